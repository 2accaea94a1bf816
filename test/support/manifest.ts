import { promises as fs } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { manifestFileName, parseManifest, type Manifest } from '../../src/domain/manifest';
import { run } from '../../src/hypervisor/run';

/**
 * The backup's manifest names every other file of its directory with the size and the
 * SHA-256 that `sha256sum` computes from the file now.
 */
export async function expectManifestOfBackup(
  backupDir: string,
  vm: string,
  runDate: string,
): Promise<Manifest> {
  const name = manifestFileName(vm, runDate);
  const manifest = parseManifest(await fs.readFile(path.join(backupDir, name), 'utf8'), vm, runDate);
  const others = (await fs.readdir(backupDir)).filter((f) => f !== name).sort();
  expect(manifest.files.map((f) => f.name)).toEqual(others);
  for (const f of manifest.files) {
    const file = path.join(backupDir, f.name);
    expect((await fs.stat(file)).size, f.name).toBe(f.size);
    expect((await run('sha256sum', ['--', file])).split(' ')[0], f.name).toBe(f.sha256);
  }
  expect((await fs.stat(path.join(backupDir, name))).mode & 0o777).toBe(0o600);
  return manifest;
}
