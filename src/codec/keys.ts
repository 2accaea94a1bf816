import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../config';

/** One AES-256 key and the id recorded in every payload it encrypts. */
export interface CodecKey {
  id: string;
  key: Buffer;
}

/** The keys of a key file: the first encrypts, all decrypt (rotation). */
export interface KeyRing {
  primary: CodecKey;
  byId: ReadonlyMap<string, CodecKey>;
}

/** A configuration error: the CLI exits 2, a worker does not start. */
export class KeyFileError extends ConfigError {
  override name = 'KeyFileError';
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses a key file's text: one `key-id base64-key` per line (a 32-byte key), `#` comments
 * and blank lines ignored. `source` names the file in errors.
 */
export function parseKeyFile(text: string, source: string): KeyRing {
  const keys: CodecKey[] = [];
  const byId = new Map<string, CodecKey>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${source} line ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 2) throw new KeyFileError(`${where}: expected "key-id base64-key"`);
    const [id, b64] = fields as [string, string];
    if (!KEY_ID.test(id)) throw new KeyFileError(`${where}: key id must be 1-64 of A-Z a-z 0-9 . _ -`);
    // Buffer.from skips what is not base64; checking the alphabet catches a truncated paste.
    const key = Buffer.from(b64, 'base64');
    if (!BASE64.test(b64) || key.length !== 32) {
      throw new KeyFileError(`${where}: key "${id}" is not 32 bytes of base64 (openssl rand -base64 32)`);
    }
    if (byId.has(id)) throw new KeyFileError(`${where}: key id "${id}" appears twice`);
    const entry = { id, key };
    keys.push(entry);
    byId.set(id, entry);
  }
  if (keys.length === 0) throw new KeyFileError(`${source}: no key in the file`);
  return { primary: keys[0]!, byId };
}

/** Reads a key file, refusing one that group or others may read (or write). */
export function loadKeyFile(file: string): KeyRing {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new KeyFileError(
      `cannot read codec key file ${file} (VMBACKUP_CODEC_KEYS_FILE): ${(err as Error).message}`,
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyFileError(
      `codec key file ${file} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}: group and others must have no access (chmod 600)`,
    );
  }
  return parseKeyFile(readFileSync(file, 'utf8'), file);
}
