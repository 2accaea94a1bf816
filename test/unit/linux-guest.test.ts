import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDiskCounter, parseQemuIoDump, ticks } from '../../src/dev/linux-guest';

// As qemu-io prints it (`read -v 0 32`) for a sector the guest wrote.
const DUMP = `00000000:  74 69 63 6b 20 30 30 30 30 30 30 34 32 0a 00 00  tick.00000042...
00000010:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
read 32/32 bytes at offset 0
32 bytes, 1 ops; 00.00 sec (1.516 MiB/sec and 33127.9401 ops/sec)
`;

describe('linux guest parsing', () => {
  it('reads the bytes of a qemu-io hex dump and the counter in them', () => {
    const bytes = parseQemuIoDump(DUMP);
    expect(bytes.length).toBe(32);
    expect(bytes.subarray(0, 14).toString('latin1')).toBe('tick 00000042\n');
    expect(parseDiskCounter(bytes)).toBe(42);
  });

  it('finds no counter on an empty disk', () => {
    expect(parseDiskCounter(Buffer.alloc(512))).toBeUndefined();
  });

  it('takes the complete tick lines of the console, not kernel messages or a line still being printed', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-console-'));
    const file = path.join(dir, 'console.log');
    await fs.writeFile(file, '[    3.1] Run /init as init process\r\nguest: ready\ntick 1\ntick 2\r\ntick 3');
    try {
      expect(await ticks(file)).toEqual([1, 2]);
      expect(await ticks(file, (await fs.readFile(file, 'utf8')).indexOf('tick 2'))).toEqual([2]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
