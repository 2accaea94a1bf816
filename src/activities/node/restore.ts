import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackupError, ErrorCode } from '../../domain/errors';
import { fileDisks } from '../../domain/domain-xml';
import { confine } from '../../domain/paths';
import { check } from '../../hypervisor/qemu-img';
import { run } from '../../hypervisor/run';
import { failpoint } from './failpoints';
import { ensureDir, exists, syncDir, writeFileAtomic } from './files';
import { heartbeat, resolveRun, step, type NodeDeps, type RunPaths } from './context';
import { readHead } from './read-head';
import { PLACEHOLDER_STATE } from './snapshot';
import type { VmRunInput } from './types';

export interface SmallFiles {
  backupXml: string;
  backupLdif: string;
  /** The live persistent XML, or null when libvirt no longer knows the VM. */
  liveXml: string | null;
  /** The VM was shut down at backup time: there is no saved state to restore from. */
  stateless: boolean;
  /** Disks of the backed-up machine, target → source file at backup time. */
  backupDisks: Array<{ target: string; sourceFile: string }>;
}

export interface RestoreMachineInput extends VmRunInput {
  xml: string;
  withState: boolean;
  startAfter: boolean;
  shutdownSeconds: number;
}

const RESTORE_XML = 'restore.xml';
const PRESERVED = '.pre-restore';

async function copySparse(src: string, dst: string): Promise<void> {
  if (await exists(dst)) return;
  const part = `${dst}.part`;
  await run('cp', ['--sparse=always', '--preserve=mode,timestamps', '--', src, part]);
  await fs.rename(part, dst);
  await syncDir(path.dirname(dst));
}

function backupFiles(paths: RunPaths) {
  return [paths.state.backup, paths.xml.backup, paths.ldif.backup];
}

/** unretain small files: copy the backup's XML and LDIF into the retain directory. */
export async function unretainSmallFiles(deps: NodeDeps, input: VmRunInput): Promise<SmallFiles> {
  const paths = resolveRun(deps, input);
  for (const f of backupFiles(paths)) {
    if (!(await exists(f))) throw new BackupError(ErrorCode.missingFiles, `backup file ${f} is missing`);
  }
  await ensureDir(paths.layout.retainDir);
  await step(ErrorCode.cannotSaveXml, 'copy the XML', () => copySparse(paths.xml.backup, paths.xml.retained));
  await step(ErrorCode.cannotSaveDirectoryEntry, 'copy the LDIF', () =>
    copySparse(paths.ldif.backup, paths.ldif.retained),
  );
  const backupXml = await fs.readFile(paths.xml.retained, 'utf8');
  const head = (await readHead(paths.state.backup, PLACEHOLDER_STATE.length)).toString('utf8');
  const backupDisks = [...fileDisks(backupXml)].map(([target, sourceFile]) => ({ target, sourceFile }));
  for (const d of backupDisks) {
    const file = path.join(paths.layout.backupDir, `${path.basename(d.sourceFile)}.${input.runDate}`);
    if (!(await exists(file)))
      throw new BackupError(ErrorCode.missingFiles, `backup image ${file} is missing`);
  }
  return {
    backupXml,
    backupLdif: await fs.readFile(paths.ldif.retained, 'utf8'),
    liveXml:
      (await deps.virsh.state(input.vm)) === undefined ? null : await deps.virsh.dumpInactiveXml(input.vm),
    stateless: head === PLACEHOLDER_STATE,
    backupDisks,
  };
}

/**
 * unretain large files: copy the state file and the disk images into the retain directory
 * (sparse-aware) and check each image; a corrupt one stops the restore before anything
 * live is touched. `input.disks` are the backed-up disks.
 */
export async function unretainLargeFiles(deps: NodeDeps, input: VmRunInput): Promise<{ bytes: number }> {
  const paths = resolveRun(deps, input);
  await ensureDir(paths.layout.retainDir);
  let bytes = 0;
  const files = [
    { from: paths.state.backup, to: paths.state.retained, image: false },
    ...paths.disks.map((d) => ({ from: d.backup, to: d.retained, image: true })),
  ];
  for (const [i, f] of files.entries()) {
    heartbeat({ file: path.basename(f.to), done: i, of: files.length });
    if (!(await exists(f.from)) && !(await exists(f.to)))
      throw new BackupError(ErrorCode.missingFiles, `backup file ${f.from} is missing`);
    await step(ErrorCode.copyFileToBackupFailed, `copy ${path.basename(f.from)}`, () =>
      copySparse(f.from, f.to),
    );
    if (f.image) {
      const result = await check(f.to);
      if (!result.ok) {
        await fs.rm(f.to, { force: true });
        throw new BackupError(ErrorCode.corruptImage, `backup image ${f.from} is corrupt: ${result.output}`);
      }
    }
    bytes += (await fs.stat(f.to)).size;
    failpoint('unretain-after-file');
  }
  return { bytes };
}

async function stopVm(deps: NodeDeps, vm: string, seconds: number): Promise<void> {
  let state = await deps.virsh.state(vm);
  if (state === undefined || state === 'shut off') return;
  if (state === 'running') {
    await deps.virsh.shutdown(vm).catch(() => undefined);
    for (let i = 0; i < seconds * 4 && state !== 'shut off'; i++) {
      await sleep(250);
      state = await deps.virsh.state(vm);
    }
  }
  if (state !== 'shut off') await deps.virsh.destroy(vm);
}

/**
 * restore: stop the VM, put the backed-up images in place (the live ones are kept aside
 * until the VM runs again), define the resolved XML, and bring the VM back from its saved
 * state with that XML — or leave it defined and off, or start it, for a VM that was off.
 * The domain is never undefined, and re-running after a crash finishes the job.
 */
export async function restoreMachine(deps: NodeDeps, input: RestoreMachineInput): Promise<{ state: string }> {
  const paths = resolveRun(deps, input);
  const xmlFile = path.join(paths.layout.retainDir, RESTORE_XML);
  const targets = fileDisks(input.xml);
  const moves = paths.disks.map((d) => {
    const live = targets.get(d.target);
    if (!live)
      throw new BackupError(ErrorCode.directoryXmlInconsistency, `resolved XML has no disk ${d.target}`);
    return {
      target: d.target,
      retained: d.retained,
      live: confine(live, [deps.config.imagesRoot], `disk ${d.target}`),
    };
  });
  const current = await deps.virsh.state(input.vm);
  // Running with every backed-up image already moved into place: we restored it before a
  // crash (we stop the VM before moving anything). Only the clean-up is left.
  if ((current === 'running' || current === 'paused') && !(await anyRetained(moves))) {
    await cleanUp(paths, moves);
    return { state: current };
  }
  await writeFileAtomic(xmlFile, input.xml, 0o600);
  if (!(await exists(paths.state.retained)) && (await anyRetained(moves))) {
    throw new BackupError(ErrorCode.missingFiles, `state file ${paths.state.retained} is missing`);
  }
  await step(ErrorCode.cannotRestoreMachine, `stop ${input.vm}`, () =>
    stopVm(deps, input.vm, input.shutdownSeconds),
  );
  failpoint('restore-after-stop');
  for (const m of moves) {
    if (await exists(m.retained)) {
      if ((await exists(m.live)) && !(await exists(`${m.live}${PRESERVED}`))) {
        await step(ErrorCode.cannotRenameImage, `keep ${m.live} aside`, () =>
          fs.rename(m.live, `${m.live}${PRESERVED}`),
        );
      }
      await ensureDir(path.dirname(m.live));
      await step(ErrorCode.cannotRenameImage, `put the backed-up ${m.target} in place`, () =>
        fs.rename(m.retained, m.live),
      );
      await syncDir(path.dirname(m.live));
    } else if (!(await exists(m.live))) {
      throw new BackupError(
        ErrorCode.missingFiles,
        `disk ${m.target}: neither the backed-up image nor ${m.live} exists`,
      );
    }
    failpoint('restore-after-disk');
  }
  await step(ErrorCode.cannotDefine, `define ${input.vm} from the resolved XML`, () =>
    deps.virsh.define(xmlFile),
  );
  if (input.withState) {
    if ((await deps.virsh.state(input.vm)) === 'shut off') {
      await step(ErrorCode.cannotRestoreMachine, `restore ${input.vm} from its state`, () =>
        deps.virsh.restore(paths.state.retained, xmlFile),
      );
    }
  } else if (input.startAfter && (await deps.virsh.state(input.vm)) === 'shut off') {
    await step(ErrorCode.cannotStart, `start ${input.vm}`, () => deps.virsh.start(input.vm));
  }
  failpoint('restore-after-start');
  await cleanUp(paths, moves);
  return { state: (await deps.virsh.state(input.vm)) ?? 'undefined' };
}

async function cleanUp(paths: RunPaths, moves: Array<{ live: string }>): Promise<void> {
  for (const m of moves) await fs.rm(`${m.live}${PRESERVED}`, { force: true });
  await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
}

async function anyRetained(moves: Array<{ retained: string }>): Promise<boolean> {
  for (const m of moves) if (await exists(m.retained)) return true;
  return false;
}

/** Abort: remove what the restore copied into the retain directory; nothing live was touched. */
export async function cleanRestore(deps: NodeDeps, input: VmRunInput): Promise<void> {
  const paths = resolveRun(deps, input);
  await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
}
