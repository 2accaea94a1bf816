import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';
import { confine, isInside } from '../../domain/paths';

async function lstatOrUndefined(p: string) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Where `p` really is: the realpath of `p`, or of its deepest existing ancestor with the
 * missing rest appended (a file still to be created; the missing part holds no symlink).
 */
export async function realLocation(p: string): Promise<string> {
  const missing: string[] = [];
  let d = p;
  while (!(await lstatOrUndefined(d))) {
    if (path.dirname(d) === d) break;
    missing.unshift(path.basename(d));
    d = path.dirname(d);
  }
  return path.join(await fs.realpath(d), ...missing);
}

/**
 * `confine` after symlink resolution: `candidate` must lie inside the realpath of one of
 * `roots`, wherever a symlink in it points. With `noSymlink`, the path itself may not be
 * a symlink at all (the node never makes one where it writes). Returns the lexical path.
 */
export async function confineReal(
  candidate: string,
  roots: readonly string[],
  what: string,
  options: { noSymlink?: boolean } = {},
): Promise<string> {
  const normal = confine(candidate, roots, what);
  const refuse = (why: string) =>
    new BackupError(ErrorCode.unsupportedConfigurationValue, `${what}: ${JSON.stringify(candidate)} ${why}`);
  if (options.noSymlink && (await lstatOrUndefined(normal))?.isSymbolicLink())
    throw refuse('is a symlink; the node does not act on symlinks there');
  const real = await realLocation(normal);
  const realRoots = await Promise.all(roots.filter((r) => isInside(r, normal)).map((r) => realLocation(r)));
  if (!realRoots.some((r) => isInside(r, real)))
    throw refuse(`resolves to ${real}, outside the configured roots (${roots.join(', ')})`);
  return normal;
}

/** A directory the node writes into: a real directory (not a symlink) inside the roots. */
export async function assertRealDir(dir: string, roots: readonly string[], what: string): Promise<void> {
  await confineReal(dir, roots, what, { noSymlink: true });
  const s = await fs.lstat(dir);
  if (!s.isDirectory())
    throw new BackupError(ErrorCode.unsupportedConfigurationValue, `${what}: ${dir} is not a directory`);
}

/** Before virsh or QEMU writes `file` itself: nothing there yet, in a real directory inside the roots. */
export async function assertFreshTarget(file: string, roots: readonly string[], what: string): Promise<void> {
  await assertRealDir(path.dirname(file), roots, `${what} (its directory)`);
  if (await lstatOrUndefined(file))
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${what}: ${file} already exists; it is removed before the write, so something else made it`,
    );
}
