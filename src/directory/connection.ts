import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
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

/** Node's codes for a server certificate that does not verify (chain, name or dates). */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function tlsOptions(config: DirectoryConfig): ConnectionOptions {
  const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
  return {
    // Never turned off: a directory that cannot prove who it is gets no bind password.
    rejectUnauthorized: true,
    ...(config.tls?.ca !== undefined ? { ca: config.tls.ca } : {}),
    // StartTLS upgrades a socket ldapts opened: name the host the certificate must match.
    host,
    ...(isIP(host) ? {} : { servername: host }),
  };
}

function bindFailure(config: DirectoryConfig, err: unknown): BackupError {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && CERTIFICATE_ERRORS.has(code)) {
    const ca = config.tls?.caFile ? `the CA in LDAP_CA_FILE ${config.tls.caFile}` : "Node's trusted CAs";
    return new BackupError(
      ErrorCode.directoryConnectionFailed,
      `cannot connect to ${config.url}: the directory's TLS certificate is not trusted by ${ca} (${code}: ${(err as Error).message})`,
      false,
    );
  }
  const badCredentials = err instanceof InvalidCredentialsError;
  let why = badCredentials ? 'invalid credentials' : (err as Error).message;
  if (badCredentials && !config.tls)
    why += ' (a directory may refuse simple binds without TLS: use ldaps:// or LDAP_STARTTLS=true)';
  // A directory that is away comes back (retry); wrong credentials or an untrusted certificate do not.
  return new BackupError(
    ErrorCode.directoryConnectionFailed,
    `cannot bind to ${config.url} as ${config.bindDn}: ${why}`,
    !badCredentials,
  );
}

/** One bound connection per call: directory activities are short and infrequent. */
export async function withDirectory<T>(
  config: DirectoryConfig,
  fn: (dir: Directory) => Promise<T>,
): Promise<T> {
  const tls = config.tls ? tlsOptions(config) : undefined;
  // ldapts speaks TLS from the first byte whenever it is given tlsOptions: only for ldaps://.
  const client = new Client({
    url: config.url,
    timeout: 30_000,
    connectTimeout: 10_000,
    ...(config.tls?.mode === 'ldaps' ? { tlsOptions: tls } : {}),
  });
  try {
    if (config.tls?.mode === 'starttls') await client.startTLS(tls);
    await client.bind(config.bindDn, config.bindPassword);
  } catch (err) {
    await client.unbind().catch(() => undefined);
    throw bindFailure(config, err);
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
