import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile, hashingCopy } from '../../src/activities/node/hashing';

const MiB = 1024 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-hash-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('one-pass hashing', () => {
  it('hashes a file of several chunks as sha256 does and reports the bytes read', async () => {
    const data = Buffer.alloc(9 * MiB + 123);
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
    const file = path.join(dir, 'plain');
    await fs.writeFile(file, data);
    const seen: number[] = [];
    expect(await hashFile(file, (b) => seen.push(b))).toEqual({ size: data.length, sha256: sha256(data) });
    expect(seen.at(-1)).toBe(data.length);
  });

  it('copies and hashes in the same pass, leaving zero runs as holes', async () => {
    const src = path.join(dir, 'sparse');
    const h = await fs.open(src, 'w');
    await h.write(Buffer.alloc(MiB, 0x5a), 0, MiB, 0);
    await h.write(Buffer.alloc(MiB, 0x7e), 0, MiB, 30 * MiB);
    await h.truncate(40 * MiB);
    await h.close();
    const dst = path.join(dir, 'copy');
    await fs.writeFile(dst, '');
    const digest = await hashingCopy(src, dst);
    const copied = await fs.readFile(dst);
    expect(copied.equals(await fs.readFile(src))).toBe(true);
    expect(digest).toEqual({ size: 40 * MiB, sha256: sha256(copied) });
    expect((await fs.stat(dst)).blocks * 512).toBeLessThan(4 * MiB);
  });

  it('refuses to read through a symlink', async () => {
    const link = path.join(dir, 'link');
    await fs.symlink(path.join(dir, 'plain'), link);
    await expect(hashFile(link)).rejects.toThrow(/ELOOP|symbolic/);
  });
});
