import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile, hashingCopy } from '../../src/activities/node/hashing';
import { setReadBudget } from '../../src/activities/node/read-budget';
import { bookRead } from '../../src/domain/read-pace';

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

describe('the node read budget', () => {
  it('books each read after the ones before it, at the budget rate, never before now', () => {
    // 100 bytes/s: 50 bytes take half a second of the budget.
    expect(bookRead(0, 1000, 50, 100)).toEqual({ waitMs: 0, freeAt: 1500 });
    expect(bookRead(1500, 1000, 50, 100)).toEqual({ waitMs: 500, freeAt: 2000 });
    // An idle budget saves nothing up: a read after a pause starts now, not earlier.
    expect(bookRead(2000, 9000, 50, 100)).toEqual({ waitMs: 0, freeAt: 9500 });
  });

  it('paces a hash and a copy running together to the budget they share, and still reads them whole', async () => {
    const data = Buffer.alloc(12 * MiB, 0x33);
    const a = path.join(dir, 'paced-a');
    const b = path.join(dir, 'paced-b');
    await fs.writeFile(a, data);
    await fs.writeFile(b, data);
    const copy = path.join(dir, 'paced-copy');
    await fs.writeFile(copy, '');
    setReadBudget(16);
    try {
      const start = Date.now();
      const [ha, hb] = await Promise.all([hashFile(a), hashingCopy(b, copy)]);
      // 24 MiB in 4 MiB reads at 16 MiB/s: the last data read starts 5 × 0.25 s after the first.
      expect(Date.now() - start).toBeGreaterThanOrEqual(1200);
      expect(ha).toEqual({ size: data.length, sha256: sha256(data) });
      expect(hb).toEqual(ha);
      expect((await fs.readFile(copy)).equals(data)).toBe(true);
    } finally {
      setReadBudget(0);
    }
  });
});
