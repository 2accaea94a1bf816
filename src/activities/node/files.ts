import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { run } from '../../hypervisor/run';
import { hashFile, hashingCopy, type FileDigest } from './hashing';

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

/** A small JSON file the node wrote (journal, result), or undefined when there is none. */
export async function readJsonIfThere<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Open flags of every file the node creates: a new file, never one that exists, never through a symlink. */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

async function unlinkIfThere(file: string): Promise<void> {
  // unlink never follows a symlink: one planted at the name is removed, not its target.
  await fs.unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Writes a small file so that a crash leaves either the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp`;
  await unlinkIfThere(tmp); // left by an attempt that died
  const handle = await fs.open(tmp, CREATE_NEW, 0o600);
  try {
    await handle.chmod(mode); // on the fd: the umask does not shape it, no symlink can redirect it
    await handle.writeFile(content);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlinkIfThere(tmp);
    throw err;
  }
  await handle.close();
  await durableRename(tmp, file);
}

const ids = new Map<string, number>();

async function idOf(db: 'passwd' | 'group', name: string): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  const key = `${db}:${name}`;
  const known = ids.get(key);
  if (known !== undefined) return known;
  const line = await run('getent', [db, name]);
  const id = Number(line.trim().split(':')[2]);
  if (!Number.isInteger(id)) throw new Error(`no ${db === 'passwd' ? 'user' : 'group'} ${name}`);
  ids.set(key, id);
  return id;
}

/**
 * Mode and owner of a file or directory the node made, set on an fd opened with
 * O_NOFOLLOW: a symlink put at its name is refused, never followed.
 */
export async function setModeOwner(
  p: string,
  want: { mode?: number | undefined; user?: string | undefined; group?: string | undefined },
): Promise<void> {
  const handle = await fs.open(p, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    if (want.user || want.group)
      await handle.chown(
        want.user ? await idOf('passwd', want.user) : -1,
        want.group ? await idOf('group', want.group) : -1,
      );
    // After chown, which clears set-id bits.
    if (want.mode !== undefined) await handle.chmod(want.mode);
  } finally {
    await handle.close();
  }
}

export async function sameFilesystem(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.stat(a), fs.stat(b)]);
  return sa.dev === sb.dev;
}

interface CopyOptions {
  onProgress?: () => void;
  prepare?: (part: string) => Promise<void>;
}

/**
 * Fills `<dst>.part` with `copyInto`, then renames it onto `dst`: the data is fsynced
 * before the rename, so a file at `dst` is always whole. A failed copy leaves no `.part`
 * behind. `prepare` runs on the finished `.part` (mode, owner) so that `dst` appears complete.
 */
async function copyThroughPart<T>(
  dst: string,
  options: CopyOptions,
  copyInto: (part: string) => Promise<T>,
): Promise<T> {
  const part = `${dst}.part`;
  await unlinkIfThere(part);
  // Made here, exclusively and owner-only; the copy then writes into this regular file.
  await (await fs.open(part, CREATE_NEW, 0o600)).close();
  const timer = options.onProgress ? setInterval(options.onProgress, 1000) : undefined;
  let result: T;
  try {
    result = await copyInto(part);
    await options.prepare?.(part);
    await fsyncPath(part);
  } catch (err) {
    await unlinkIfThere(part);
    throw err;
  } finally {
    if (timer) clearInterval(timer);
  }
  await durableRename(part, dst);
  return result;
}

/** Copies `src` to `dst` sparse-aware (and by reflink where the file system can) through `<dst>.part`. */
export async function durableCopy(src: string, dst: string, options: CopyOptions = {}): Promise<void> {
  await copyThroughPart(dst, options, async (part) => {
    await run('cp', [
      '--reflink=auto',
      '--sparse=always',
      '--preserve=mode,ownership,timestamps',
      '--',
      src,
      part,
    ]);
  });
}

/**
 * Copies `src` to `dst` durably (through `<dst>.part`) and hashes it in the same read;
 * `check` sees the digest before the copy gets its name and may refuse it by throwing.
 */
export async function durableHashedCopy(
  src: string,
  dst: string,
  options: {
    onBytes?: (bytes: number) => void;
    check?: (digest: FileDigest) => void;
    prepare?: (part: string) => Promise<void>;
  } = {},
): Promise<FileDigest> {
  const prepare = options.prepare;
  return copyThroughPart(dst, prepare ? { prepare } : {}, async (part) => {
    const digest = await hashingCopy(src, part, options.onBytes);
    options.check?.(digest);
    return digest;
  });
}

/**
 * Puts `src` at `dst` and returns its digest, reading the data once: hashed then renamed
 * on one filesystem, else hashed while it is copied (durably, through `<dst>.part`),
 * leaving the source in place (removing it is a step of its own, taken once the copy is safe).
 */
export async function transferHashed(
  src: string,
  dst: string,
  options: { onBytes?: (bytes: number) => void; prepare?: (file: string) => Promise<void> } = {},
): Promise<FileDigest> {
  if (await sameFilesystem(path.dirname(src), path.dirname(dst))) {
    const digest = await hashFile(src, options.onBytes);
    await options.prepare?.(src);
    await durableRename(src, dst);
    return digest;
  }
  return durableHashedCopy(src, dst, options);
}

/**
 * Puts `src` at `dst`: a durable rename on one filesystem, else a durable copy that leaves
 * the source in place.
 */
/** An `onProgress` that reports how far `<dst>.part` has grown (the copy writes there). */
export function partGrowth(dst: string, report: (bytes: number) => void): () => void {
  return () =>
    void fs.stat(`${dst}.part`).then(
      (s) => report(s.size),
      () => undefined,
    );
}

async function transferFile(src: string, dst: string, options: CopyOptions = {}): Promise<void> {
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
export async function moveFile(src: string, dst: string, options: CopyOptions = {}): Promise<void> {
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
  // QEMU (user libvirt-qemu) must reach images through directories made with the default.
  const mode = owner?.mode ?? 0o755;
  const first = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const made: string[] = [];
  if (first)
    for (let d = dir; ; d = path.dirname(d)) {
      made.unshift(d);
      if (d === first || d === path.dirname(d)) break;
    }
  // mkdir follows a symlink planted meanwhile: each directory must be a real one.
  for (const d of made.includes(dir) ? made : [...made, dir]) {
    const s = await fs.lstat(d);
    if (!s.isDirectory()) throw new Error(`${d} is not a directory (a symlink?)`);
  }
  for (const d of made) if (d !== dir) await setModeOwner(d, { mode });
  if (first || owner?.mode !== undefined) await setModeOwner(dir, { mode });
  if (owner?.user || owner?.group) await setModeOwner(dir, { user: owner.user, group: owner.group, mode });
  // Every directory that got a new entry: from the new directory's parent up to the first one made.
  const top = path.dirname(first ?? dir);
  for (let d = path.dirname(dir); ; d = path.dirname(d)) {
    await syncDir(d);
    if (d === top || d === path.dirname(d)) break;
  }
}

/** Owner of a file the node made (an fd opened without following symlinks). */
export async function chown(
  file: string,
  user: string | undefined,
  group: string | undefined,
): Promise<void> {
  if (user || group) await setModeOwner(file, { user, group });
}

export async function fileSize(p: string): Promise<number> {
  return (await fs.stat(p)).size;
}

/** Bytes really allocated (sparse files count only their data). */
export async function allocatedBytes(p: string): Promise<number> {
  return (await fs.stat(p)).blocks * 512;
}
