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

/** Makes a rename, creation or removal in `dir` durable. */
export const syncDir = (dir: string): Promise<void> => fsyncPath(dir);

/** Flushes a file's data: a copy counts as made only once this returned. */
export const syncFile = (file: string): Promise<void> => fsyncPath(file);

/**
 * A rename that survives a power loss: both directories are synced, so after a crash the
 * file is at exactly one of the two names.
 */
export async function durableRename(from: string, to: string): Promise<void> {
  await fs.rename(from, to);
  await syncDir(path.dirname(to));
  if (path.dirname(from) !== path.dirname(to)) await syncDir(path.dirname(from));
}

/** Removes a file (if present) durably. */
export async function durableUnlink(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // Also when it was gone already: an earlier attempt may have died before its sync.
  await syncDir(path.dirname(file)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Writes a small file so that a crash leaves either the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, content: string, mode = 0o640): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.writeFile(tmp, content, { mode });
  await fs.chmod(tmp, mode);
  await fsyncPath(tmp);
  await durableRename(tmp, file);
}

export async function sameFilesystem(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b)]);
  return sa.dev === sb.dev;
}

/**
 * Copies `src` to `dst` sparse-aware through `<dst>.part`: the data is fsynced before the
 * rename, so a file at `dst` is always whole. A failed copy leaves no `.part` behind.
 * `prepare` runs on the finished `.part` (mode, owner) so that `dst` appears complete.
 */
export async function durableCopy(
  src: string,
  dst: string,
  options: { onProgress?: () => void; prepare?: (part: string) => Promise<void> } = {},
): Promise<void> {
  const part = `${dst}.part`;
  await fs.rm(part, { force: true });
  const timer = options.onProgress ? setInterval(options.onProgress, 2000) : undefined;
  try {
    await run('cp', [
      '--reflink=auto',
      '--sparse=always',
      '--preserve=mode,ownership,timestamps',
      '--',
      src,
      part,
    ]);
    await options.prepare?.(part);
    await fsyncPath(part);
  } catch (err) {
    await fs.rm(part, { force: true });
    throw err;
  } finally {
    if (timer) clearInterval(timer);
  }
  await durableRename(part, dst);
}

/**
 * Puts `src` at `dst`: a durable rename on one filesystem, else a durable copy that leaves
 * the source in place (removing it is a step of its own, taken once the copy is safe).
 */
export async function transferFile(
  src: string,
  dst: string,
  options: { onProgress?: () => void; prepare?: (file: string) => Promise<void> } = {},
): Promise<void> {
  if (await sameFilesystem(path.dirname(src), path.dirname(dst))) {
    await options.prepare?.(src);
    await durableRename(src, dst);
  } else {
    await durableCopy(src, dst, options);
  }
}

/**
 * Moves a file: `transferFile`, then the source removed if it was copied. Re-running after
 * a crash at any point finishes the move.
 */
export async function moveFile(
  src: string,
  dst: string,
  options: { onProgress?: () => void; prepare?: (file: string) => Promise<void> } = {},
): Promise<void> {
  if (!(await exists(src))) {
    if (!(await exists(dst))) throw new Error(`neither ${src} nor ${dst} exists`);
    // An earlier attempt moved it and may have died before its sync.
    await syncDir(path.dirname(dst));
    return;
  }
  if (src === dst) return;
  if (await sameFilesystem(path.dirname(src), path.dirname(dst))) return transferFile(src, dst, options);
  if (!(await exists(dst))) await transferFile(src, dst, options);
  else await syncDir(path.dirname(dst)); // copied by an attempt that may have died before its sync
  await durableUnlink(src);
}

export async function ensureDir(
  dir: string,
  owner?: { user?: string | undefined; group?: string | undefined; mode?: number | undefined },
): Promise<void> {
  // QEMU (user libvirt-qemu) must reach retained images through these directories.
  const first = await fs.mkdir(dir, { recursive: true, mode: owner?.mode ?? 0o755 });
  if (owner?.mode !== undefined) await fs.chmod(dir, owner.mode);
  if (owner?.user || owner?.group) await chown(dir, owner.user, owner.group);
  // Every directory that got a new entry: from the new directory's parent up to the first one made.
  const top = path.dirname(first ?? dir);
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    await syncDir(d);
    if (d === top || d === path.dirname(d)) break;
  }
}

export async function chown(
  file: string,
  user: string | undefined,
  group: string | undefined,
): Promise<void> {
  const spec = `${user ?? ''}${group ? `:${group}` : ''}`;
  // -h: never follow a symlink planted where our file should be.
  if (spec) await run('chown', ['-h', '--', spec, file]);
}

export async function fileSize(p: string): Promise<number> {
  return (await fs.stat(p)).size;
}

/** Bytes really allocated (sparse files count only their data). */
export async function allocatedBytes(p: string): Promise<number> {
  return (await fs.stat(p)).blocks * 512;
}
