import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { isInside } from '../../src/domain/paths';
import { loadDevEnv, repoRoot } from '../support/dev-env';

loadDevEnv();

// QEMU under qemu:///system runs as this user; libvirt refuses a disk it cannot reach
// ("Cannot access storage file … Permission denied").
const QEMU_USER = 'libvirt-qemu';
const ROOTS = ['VMBACKUP_IMAGES_ROOT', 'VMBACKUP_RETAIN_ROOT', 'VMBACKUP_BACKUP_ROOT', 'VMBACKUP_RAMDISK'];

/** `/`, `/a`, `/a/b`, … down to `dir` itself. */
function chain(dir: string): string[] {
  const parts = dir.split('/').filter(Boolean);
  return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}

async function notTraversable(dir: string): Promise<string[]> {
  const blocked: string[] = [];
  for (const d of new Set([...chain(dir), ...chain(await fs.realpath(dir))])) {
    const r = await execa('runuser', ['-u', QEMU_USER, '--', 'test', '-x', d], { reject: false });
    if (r.exitCode !== 0) blocked.push(d);
  }
  return blocked;
}

describe('the directories QEMU opens files in (.dev/env)', () => {
  it.each(ROOTS)('%s: every directory down to it is traversable by libvirt-qemu', async (name) => {
    const dir = process.env[name];
    expect(dir, `${name} in .dev/env`).toBeTruthy();
    expect(await notTraversable(dir!)).toEqual([]);
  });

  // The checkout may lie below a 0700 home (/root/x): only roots outside it are reachable
  // wherever it was cloned.
  it.each(ROOTS)('%s lies outside the checkout', async (name) => {
    const repo = await fs.realpath(repoRoot);
    const dir = await fs.realpath(process.env[name]!);
    expect(isInside(repo, dir), `${dir} is inside ${repo}`).toBe(false);
    expect(path.isAbsolute(dir)).toBe(true);
  });
});
