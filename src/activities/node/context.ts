import path from 'node:path';
import type { NodeConfig } from '../../config';
import { BackupError, ErrorCode } from '../../domain/errors';
import { assertRunDate, assertVmName } from '../../domain/names';
import { confine, runLayout, type RunLayout } from '../../domain/paths';
import { Virsh } from '../../hypervisor/virsh';
import { confineReal } from './confine-real';
import type { VmRunInput } from './types';

export interface NodeDeps {
  config: NodeConfig;
  virsh: Virsh;
}

export function nodeDeps(config: NodeConfig): NodeDeps {
  return { config, virsh: new Virsh(config.libvirtUri) };
}

export interface DiskPaths {
  target: string;
  live: string;
  retained: string;
  /** Overlay prepared before the downtime window, renamed onto `live` inside it. */
  overlay: string;
  /** Live mode: the overlay libvirt creates at the snapshot, committed back at the merge. */
  liveOverlay: string;
  backup: string;
}

export interface RunPaths {
  layout: RunLayout;
  disks: DiskPaths[];
  state: { saved: string; retained: string; backup: string };
  xml: { retained: string; backup: string };
  ldif: { retained: string; backup: string };
}

/**
 * Validates a run's input again on the node (never trust the queue) and confines every
 * path: live images below the images root, plan directories below the storage roots.
 */
export function resolveRun(deps: NodeDeps, input: VmRunInput): RunPaths {
  assertVmName(input.vm);
  assertRunDate(input.runDate);
  const { imagesRoot, storageRoots } = deps.config;
  const live = input.disks.map((d) => confine(d.sourceFile, [imagesRoot], `disk ${d.target}`));
  const retainRoot = confine(input.plan.retainRoot, storageRoots, 'sstBackupRetainDirectory');
  const backupRoot = confine(input.plan.backupRoot, storageRoots, 'sstBackupRootDirectory');
  const ramDisk = input.plan.ramDisk
    ? confine(input.plan.ramDisk, storageRoots, 'sstBackupRamDiskLocation')
    : undefined;
  const layout = runLayout({
    vm: input.vm,
    runDate: input.runDate,
    diskPaths: live,
    imagesRoot,
    retainRoot,
    backupRoot,
    ramDisk,
  });
  const inRetain = (f: string) => path.join(layout.retainDir, f);
  const inBackup = (f: string) => path.join(layout.backupDir, f);
  return {
    layout,
    disks: input.disks.map((d, i) => ({
      target: d.target,
      live: live[i]!,
      retained: inRetain(layout.diskFiles[i]!),
      overlay: `${live[i]!}.vmbackup-overlay`,
      liveOverlay: `${live[i]!}.vmbackup-live`,
      backup: inBackup(layout.diskFiles[i]!),
    })),
    state: {
      saved: path.join(layout.stateSaveDir, layout.stateFile),
      retained: inRetain(layout.stateFile),
      backup: inBackup(layout.stateFile),
    },
    xml: { retained: inRetain(layout.xmlFile), backup: inBackup(layout.xmlFile) },
    ldif: { retained: inRetain(layout.ldifFile), backup: inBackup(layout.ldifFile) },
  };
}

/**
 * `resolveRun` plus the same paths checked after symlink resolution: a symlink planted as
 * a run directory, in one, or as a file the node writes cannot steer it outside its roots.
 * The activities start with this, before they change anything.
 */
export async function resolveRunChecked(deps: NodeDeps, input: VmRunInput): Promise<RunPaths> {
  const paths = resolveRun(deps, input);
  const { imagesRoot, storageRoots } = deps.config;
  const inStorage = (p: string, what: string) => confineReal(p, storageRoots, what, { noSymlink: true });
  await inStorage(paths.layout.retainDir, 'retain directory');
  await inStorage(paths.layout.backupDir, 'backup directory');
  await inStorage(paths.layout.stateSaveDir, 'state file directory');
  for (const f of [paths.state, paths.xml, paths.ldif])
    for (const p of Object.values(f)) await inStorage(p, 'run file');
  for (const d of paths.disks) {
    await confineReal(d.live, [imagesRoot], `disk ${d.target}`);
    await confineReal(d.overlay, [imagesRoot], `overlay of ${d.target}`, { noSymlink: true });
    await confineReal(d.liveOverlay, [imagesRoot], `live overlay of ${d.target}`, { noSymlink: true });
    await inStorage(d.retained, `retained image of ${d.target}`);
    await inStorage(d.backup, `backup image of ${d.target}`);
  }
  return paths;
}

export { reportProgress as heartbeat } from './guard';

/** Wraps a failing system call into a contract error with the step that failed. */
export async function step<T>(
  code: (typeof ErrorCode)[keyof typeof ErrorCode],
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(code, `${what}: ${(err as Error).message}`);
  }
}
