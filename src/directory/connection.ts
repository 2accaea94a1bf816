import { Attribute, Change, Client, InvalidCredentialsError, NoSuchObjectError } from 'ldapts';
import type { DirectoryConfig } from '../config';
import type { Attributes } from '../domain/plan';
import { BackupError, ErrorCode } from '../domain/errors';

export interface DirectoryEntry {
  dn: string;
  attributes: Attributes;
}

function toAttributes(raw: Record<string, unknown>): Attributes {
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'dn') continue;
    const values = Array.isArray(value) ? value : [value];
    out[key.toLowerCase()] = values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
  }
  return out;
}

/** One bound connection per call: directory activities are short and infrequent. */
export async function withDirectory<T>(
  config: DirectoryConfig,
  fn: (dir: Directory) => Promise<T>,
): Promise<T> {
  const client = new Client({ url: config.url, timeout: 30_000, connectTimeout: 10_000 });
  try {
    await client.bind(config.bindDn, config.bindPassword);
  } catch (err) {
    const badCredentials = err instanceof InvalidCredentialsError;
    const why = badCredentials ? 'invalid credentials' : (err as Error).message;
    // A directory that is away comes back (retry); wrong credentials do not.
    throw new BackupError(
      ErrorCode.directoryConnectionFailed,
      `cannot bind to ${config.url} as ${config.bindDn}: ${why}`,
      !badCredentials,
    );
  }
  try {
    return await fn(new Directory(client));
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

export class Directory {
  constructor(private readonly client: Client) {}

  /** The entry at `dn`, or undefined when it does not exist. */
  async read(dn: string, attributes: string[] = ['*']): Promise<DirectoryEntry | undefined> {
    try {
      const { searchEntries } = await this.client.search(dn, { scope: 'base', attributes });
      const e = searchEntries[0];
      return e ? { dn: e.dn, attributes: toAttributes(e) } : undefined;
    } catch (err) {
      if (err instanceof NoSuchObjectError) return undefined;
      throw err;
    }
  }

  async search(
    base: string,
    scope: 'one' | 'sub',
    filter: string,
    attributes: string[] = ['*'],
  ): Promise<DirectoryEntry[]> {
    try {
      const { searchEntries } = await this.client.search(base, { scope, filter, attributes });
      return searchEntries.map((e) => ({ dn: e.dn, attributes: toAttributes(e) }));
    } catch (err) {
      if (err instanceof NoSuchObjectError) return [];
      throw err;
    }
  }

  add(dn: string, attributes: Record<string, string | string[]>): Promise<void> {
    return this.client.add(dn, attributes);
  }

  async replace(dn: string, values: Record<string, string | string[]>): Promise<void> {
    const changes = Object.entries(values).map(
      ([type, v]) =>
        new Change({
          operation: 'replace',
          modification: new Attribute({ type, values: Array.isArray(v) ? v : [v] }),
        }),
    );
    await this.client.modify(dn, changes);
  }

  del(dn: string): Promise<void> {
    return this.client.del(dn);
  }
}
