import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { run } from '../../hypervisor/run';

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await fs.open(p, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename or creation in `dir` durable. */
export const syncDir = (dir: string): Promise<void> => fsyncPath(dir);

/** Writes a small file so that a crash leaves either the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, content: string, mode = 0o640): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, content, { mode });
  await fsyncPath(tmp);
  await fs.rename(tmp, file);
  await syncDir(path.dirname(file));
}

export async function sameFilesystem(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b)]);
  return sa.dev === sb.dev;
}

/**
 * Moves a file: a rename on one filesystem; otherwise a sparse-aware copy to `<dst>.part`,
 * made durable, renamed into place, and only then the source removed. Re-running after a
 * crash at any point finishes the move.
 */
export async function moveFile(src: string, dst: string, onProgress?: () => void): Promise<void> {
  if (!(await exists(src))) {
    if (await exists(dst)) return;
    throw new Error(`neither ${src} nor ${dst} exists`);
  }
  if (await sameFilesystem(path.dirname(src), path.dirname(dst))) {
    await fs.rename(src, dst);
    await syncDir(path.dirname(dst));
    return;
  }
  const part = `${dst}.part`;
  const timer = onProgress ? setInterval(onProgress, 2000) : undefined;
  try {
    await run('cp', ['--sparse=always', '--preserve=mode,ownership,timestamps', '--', src, part]);
  } finally {
    if (timer) clearInterval(timer);
  }
  await fsyncPath(part);
  await fs.rename(part, dst);
  await syncDir(path.dirname(dst));
  await fs.unlink(src);
  await syncDir(path.dirname(src));
}

export async function ensureDir(
  dir: string,
  owner?: { user?: string | undefined; group?: string | undefined; mode?: number | undefined },
): Promise<void> {
  // QEMU (user libvirt-qemu) must reach retained images through these directories.
  await fs.mkdir(dir, { recursive: true, mode: owner?.mode ?? 0o755 });
  if (owner?.mode !== undefined) await fs.chmod(dir, owner.mode);
  if (owner?.user || owner?.group) await chown(dir, owner.user, owner.group);
}

export async function chown(
  file: string,
  user: string | undefined,
  group: string | undefined,
): Promise<void> {
  const spec = `${user ?? ''}${group ? `:${group}` : ''}`;
  if (spec) await run('chown', ['--', spec, file]);
}

export async function fileSize(p: string): Promise<number> {
  return (await fs.stat(p)).size;
}

/** Bytes really allocated (sparse files count only their data). */
export async function allocatedBytes(p: string): Promise<number> {
  return (await fs.stat(p)).blocks * 512;
}
