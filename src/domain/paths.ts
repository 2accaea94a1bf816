import path from 'node:path';
import { BackupError, ErrorCode } from './errors';

/**
 * Turns a plan's `file:///…` URI into an absolute, normalised path. Other schemes are
 * not supported by the node worker (the original also knew only file://).
 */
export function pathFromFileUri(uri: string, attribute: string): string {
  if (!uri.startsWith('file://')) {
    throw new BackupError(
      ErrorCode.unsupportedProtocol,
      `${attribute}: only file:// URIs are supported, got ${JSON.stringify(uri)}`,
    );
  }
  let p: string;
  try {
    p = decodeURIComponent(uri.slice('file://'.length));
  } catch {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${attribute}: malformed URI ${JSON.stringify(uri)}`,
    );
  }
  if (!p.startsWith('/') || p.includes('\0') || p.split('/').includes('..')) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${attribute}: ${JSON.stringify(uri)} is not an absolute path`,
    );
  }
  return path.posix.normalize(p).replace(/\/+$/, '') || '/';
}

export function isInside(root: string, candidate: string): boolean {
  const rel = path.posix.relative(root, candidate);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !path.posix.isAbsolute(rel));
}

/** Refuses a path outside every configured root: the directory must not steer us elsewhere. */
export function confine(candidate: string, roots: readonly string[], what: string): string {
  const normal = path.posix.normalize(candidate);
  if (!path.posix.isAbsolute(normal) || candidate.split('/').includes('..')) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${what}: ${JSON.stringify(candidate)} is not an absolute path`,
    );
  }
  if (!roots.some((root) => isInside(root, normal))) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `${what}: ${JSON.stringify(candidate)} is outside the configured roots (${roots.join(', ')})`,
    );
  }
  return normal;
}

/**
 * Where a VM's files live during a run. `poolPath` is the disk's directory below the
 * images root (the original's `vm-persistent/<storage pool>`), so backups of VMs from
 * different storage pools never collide.
 */
export interface RunLayout {
  /** `<retain>/<pool path>/<vm>/<date>` */
  retainDir: string;
  /** `<backup root>/<pool path>/<vm>/<date>` */
  backupDir: string;
  /** Where `virsh save` writes: the RAM disk if the plan has one, else the retain directory. */
  stateSaveDir: string;
  stateFile: string;
  xmlFile: string;
  ldifFile: string;
  /** Name of the retained/backed-up copy of each disk, in disk order. */
  diskFiles: string[];
}

export function poolPathOf(diskPath: string, imagesRoot: string): string {
  if (!isInside(imagesRoot, diskPath)) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `disk ${diskPath} is outside the images root ${imagesRoot}`,
    );
  }
  return path.posix.relative(imagesRoot, path.posix.dirname(diskPath));
}

export function runLayout(args: {
  vm: string;
  runDate: string;
  diskPaths: readonly string[];
  imagesRoot: string;
  retainRoot: string;
  backupRoot: string;
  ramDisk?: string | undefined;
}): RunLayout {
  const first = args.diskPaths[0];
  const poolPath = first ? poolPathOf(first, args.imagesRoot) : '';
  const vmPart = path.posix.join(poolPath, args.vm, args.runDate);
  const retainDir = path.posix.join(args.retainRoot, vmPart);
  const names = args.diskPaths.map((p) => `${path.posix.basename(p)}.${args.runDate}`);
  if (new Set(names).size !== names.length) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `two disks of ${args.vm} share a file name`,
    );
  }
  return {
    retainDir,
    backupDir: path.posix.join(args.backupRoot, vmPart),
    stateSaveDir: args.ramDisk ? path.posix.join(args.ramDisk, args.vm) : retainDir,
    stateFile: `${args.vm}.state.${args.runDate}`,
    xmlFile: `${args.vm}.xml.${args.runDate}`,
    ldifFile: `${args.vm}.ldif.${args.runDate}`,
    diskFiles: names,
  };
}
