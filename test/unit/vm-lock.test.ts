import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withVmFileLock } from '../../src/activities/node/vm-lock';

let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmlock-'));
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('withVmFileLock', () => {
  it('holds the lock file with its pid while the work runs and removes it afterwards', async () => {
    const seen = await withVmFileLock('vm1', () => fs.readFile(path.join(dir, 'vm1.lock'), 'utf8'), dir);
    expect(seen).toBe(String(process.pid));
    await expect(fs.stat(path.join(dir, 'vm1.lock'))).rejects.toThrow();
  });

  it('takes over a lock left by a process that is gone', async () => {
    await fs.writeFile(path.join(dir, 'vm1.lock'), '999999999');
    expect(await withVmFileLock('vm1', async () => 'ran', dir)).toBe('ran');
  });

  it('waits while a live process holds the lock and runs once it is released', async () => {
    // pid 1 is always alive.
    await fs.writeFile(path.join(dir, 'vm1.lock'), '1');
    let ran = false;
    const pending = withVmFileLock('vm1', async () => (ran = true), dir, 20);
    await new Promise((r) => setTimeout(r, 150));
    expect(ran).toBe(false);
    await fs.rm(path.join(dir, 'vm1.lock'));
    await pending;
    expect(ran).toBe(true);
  });

  it('releases the lock when the work fails', async () => {
    await expect(withVmFileLock('vm1', () => Promise.reject(new Error('boom')), dir)).rejects.toThrow('boom');
    await expect(fs.stat(path.join(dir, 'vm1.lock'))).rejects.toThrow();
  });

  it('locks VMs independently', async () => {
    await fs.writeFile(path.join(dir, 'other.lock'), '1');
    expect(await withVmFileLock('vm1', async () => 'ran', dir)).toBe('ran');
  });
});
