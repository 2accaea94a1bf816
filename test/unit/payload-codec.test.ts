import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../src/codec/aes-gcm-codec';
import { dataConverterFromEnv } from '../../src/codec/data-converter';
import { KeyFileError, loadKeyFile, parseKeyFile } from '../../src/codec/keys';

const key = () => randomBytes(32).toString('base64');
const oldKey = `old ${key()}`;
const newKey = `new ${key()}`;
const ring = (...lines: string[]) => parseKeyFile(lines.join('\n'), 'test keys');
const LDIF = 'dn: sstVirtualMachine=vm-1,ou=virtual machines\nsstNode: node-a\n';
const value = {
  ldif: LDIF,
  xml: '<domain type="kvm"><name>vm-1</name></domain>',
  image: '/var/lib/vm-1.qcow2',
};
const plain = (v: unknown) => defaultPayloadConverter.toPayload(v);
const meta = (p: Payload, k: string) => Buffer.from(p.metadata![k]!).toString();

function dir(): string {
  return mkdtempSync(path.join(tmpdir(), 'vmbackup-codec-'));
}

function keyFile(text: string, mode: number): string {
  const file = path.join(dir(), 'keys');
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

describe('AesGcmCodec', () => {
  it('round-trips a payload, metadata included, and the stored form holds none of it in clear', async () => {
    const codec = new AesGcmCodec(ring(newKey));
    const original = plain(value);
    const [encoded] = await codec.encode([original]);
    expect(meta(encoded!, 'encoding')).toBe(ENCRYPTED_ENCODING);
    expect(meta(encoded!, KEY_ID_METADATA)).toBe('new');
    const stored = Buffer.from(encoded!.data!).toString('latin1');
    for (const secret of ['dn:', 'sstNode', '<domain', '/var/lib/vm-1.qcow2', 'json/plain']) {
      expect(stored).not.toContain(secret);
    }
    const [decoded] = await codec.decode([encoded!]);
    expect(meta(decoded!, 'encoding')).toBe('json/plain');
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(value);
  });

  it('uses a fresh nonce for every payload: the same value never encrypts to the same bytes', async () => {
    const codec = new AesGcmCodec(ring(newKey));
    const [a, b] = await codec.encode([plain(value), plain(value)]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('decodes a payload written with the old key after a new key was put first, and encrypts with the new one', async () => {
    const [fromOld] = await new AesGcmCodec(ring(oldKey)).encode([plain(value)]);
    const rotated = new AesGcmCodec(ring(newKey, oldKey));
    const [decoded] = await rotated.decode([fromOld!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(value);
    const [fresh] = await rotated.encode([plain(value)]);
    expect(meta(fresh!, KEY_ID_METADATA)).toBe('new');
  });

  it('refuses a payload whose ciphertext, tag or key id was altered', async () => {
    const codec = new AesGcmCodec(ring(newKey, oldKey));
    const [encoded] = await codec.encode([plain(value)]);
    for (const at of [12, encoded!.data!.length - 1]) {
      const data = Buffer.from(encoded!.data!);
      data[at]! ^= 1;
      await expect(codec.decode([{ ...encoded!, data }])).rejects.toThrow(
        /fails authentication: it was altered/,
      );
    }
    // Relabelled to the other known key: the key id is authenticated too.
    const relabelled = {
      ...encoded!,
      metadata: { ...encoded!.metadata, [KEY_ID_METADATA]: Buffer.from('old') },
    };
    await expect(codec.decode([relabelled])).rejects.toThrow(/fails authentication/);
  });

  it('refuses a payload encrypted with a key id it does not have, naming the id', async () => {
    const [encoded] = await new AesGcmCodec(ring(oldKey)).encode([plain(value)]);
    await expect(new AesGcmCodec(ring(newKey)).decode([encoded!])).rejects.toThrow(
      /unknown key id "old" \(known: new\)/,
    );
  });

  it('passes plain payloads through unchanged, as recorded before encryption', async () => {
    const original = plain(value);
    const [decoded] = await new AesGcmCodec(ring(newKey)).decode([original]);
    expect(decoded).toBe(original);
  });
});

describe('codec key file', () => {
  it('is refused when group or others may read it, with its mode in the error', () => {
    for (const mode of [0o640, 0o604, 0o660]) {
      const file = keyFile(`${newKey}\n`, mode);
      expect(() => loadKeyFile(file)).toThrow(KeyFileError);
      expect(() => loadKeyFile(file)).toThrow(`has mode ${mode.toString(8).padStart(4, '0')}`);
    }
  });

  it('is accepted when only its owner may read it: the first key encrypts, comments and blank lines are skipped', () => {
    const file = keyFile(`# rotated 2026-12\n\n${newKey}\n${oldKey}\n`, 0o600);
    const keys = loadKeyFile(file);
    expect(keys.primary.id).toBe('new');
    expect([...keys.byId.keys()]).toEqual(['new', 'old']);
  });

  it('is refused when malformed, naming the line', () => {
    expect(() => ring('k1')).toThrow(/test keys line 1: expected "key-id base64-key"/);
    expect(() => ring(newKey, `short ${randomBytes(16).toString('base64')}`)).toThrow(
      /line 2: key "short" is not 32 bytes of base64/,
    );
    expect(() => ring(`bad ${key().slice(0, -4)}!!!!`)).toThrow(/not 32 bytes of base64/);
    expect(() => ring(newKey, newKey)).toThrow(/line 2: key id "new" appears twice/);
    expect(() => ring('# only a comment')).toThrow(/no key in the file/);
    expect(() => loadKeyFile(path.join(dir(), 'missing'))).toThrow(/cannot read codec key file/);
  });

  it('turns the codec on only when VMBACKUP_CODEC_KEYS_FILE is set', async () => {
    expect(dataConverterFromEnv({})).toBeUndefined();
    const converter = dataConverterFromEnv({ VMBACKUP_CODEC_KEYS_FILE: keyFile(`${newKey}\n`, 0o600) });
    const [encoded] = await converter!.payloadCodecs![0]!.encode([plain(value)]);
    expect(meta(encoded!, 'encoding')).toBe(ENCRYPTED_ENCODING);
    expect(() => dataConverterFromEnv({ VMBACKUP_CODEC_KEYS_FILE: keyFile(`${newKey}\n`, 0o644) })).toThrow(
      KeyFileError,
    );
  });
});
