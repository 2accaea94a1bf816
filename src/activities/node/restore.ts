import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackupError, ErrorCode } from '../../domain/errors';
import { fileDisks } from '../../domain/domain-xml';
import { checkRestoreXml } from '../../domain/restore-xml';
import { confine } from '../../domain/paths';
import {
  decideRestore,
  decideUnretain,
  type RestoreAction,
  type RestoreWorld,
  type UnretainAction,
  type UnretainWorld,
} from '../../domain/steps/restore';
import { check } from '../../hypervisor/qemu-img';
import { drive } from './drive';
import {
  durableHashedCopy,
  durableRename,
  durableUnlink,
  ensureDir,
  exists,
  setModeOwner,
  syncDir,
  writeFileAtomic,
} from './files';
import { PRIVATE_FILE, runDirMode } from '../../domain/modes';
import { observeDomain } from './observe';
import { readHead } from './read-head';
import { confineReal } from './confine-real';
import { heartbeat, resolveRunChecked, step, type NodeDeps, type RunPaths } from './context';
import { PLACEHOLDER_STATE } from './snapshot';
import { manifestFileName, parseManifest, type Manifest } from '../../domain/manifest';
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

export interface RestoreMachineResult {
  state: string;
  /** Live images kept aside because the VM was left off: an operator may remove them. */
  keptAside?: string[] | undefined;
}

const RESTORE_XML = 'restore.xml';
export const RESTORE_JOURNAL = '.vmbackup-restore.json';

/** Written when a restore of this backup finished; the retain directory is gone then. */
const finishedMarker = (paths: RunPaths) => `${paths.layout.retainDir}.restored`;

interface UnretainFile {
  from: string;
  to: string;
  image: boolean;
}

async function observeUnretain(paths: RunPaths, files: UnretainFile[], vm: string): Promise<UnretainWorld> {
  const views = [];
  for (const f of files)
    views.push({ name: path.basename(f.to), atBackup: await exists(f.from), atRetain: await exists(f.to) });
  return {
    vm,
    staleMarker: await exists(finishedMarker(paths)),
    retainDirExists: await exists(paths.layout.retainDir),
    files: views,
  };
}

/**
 * The backup's manifest, when it has one (backups from before manifests have none). One
 * that is there but unreadable refuses the restore: the backup cannot be trusted.
 */
async function backupManifest(paths: RunPaths, vm: string): Promise<Manifest | undefined> {
  const runDate = path.basename(paths.layout.backupDir);
  const file = path.join(paths.layout.backupDir, manifestFileName(vm, runDate));
  if (!(await exists(file))) return undefined;
  try {
    return parseManifest(await fs.readFile(file, 'utf8'), vm, runDate);
  } catch (err) {
    throw new BackupError(
      ErrorCode.corruptImage,
      `the backup's manifest ${file} is unreadable: ${(err as Error).message}`,
    );
  }
}

/**
 * Copies each file into the retain directory, hashed as it is copied and compared with the
 * backup's manifest; an image is also checked before it gets its name.
 */
async function unretain(
  stepName: 'unretain-small' | 'unretain-large',
  paths: RunPaths,
  files: UnretainFile[],
  vm: string,
): Promise<void> {
  const manifest = await backupManifest(paths, vm);
  await drive({
    step: stepName,
    vm,
    observe: () => observeUnretain(paths, files, vm),
    decide: decideUnretain,
    act: async (a: UnretainAction) => {
      switch (a.kind) {
        case 'clear-marker':
          return durableUnlink(finishedMarker(paths));
        case 'create-retain-dir':
          return ensureDir(paths.layout.retainDir, { mode: runDirMode(undefined, 'retain') });
        case 'copy-file': {
          const f = files.find((x) => path.basename(x.to) === a.target)!;
          const listed = manifest?.files.find((e) => e.name === path.basename(f.from));
          if (manifest && !listed)
            throw new BackupError(ErrorCode.corruptImage, `${f.from} is not in the backup's manifest`);
          await step(ErrorCode.copyFileToBackupFailed, `copy ${path.basename(f.from)}`, () =>
            durableHashedCopy(f.from, f.to, {
              onBytes: (bytes) => heartbeat({ step: stepName, file: a.target, bytes, total: listed?.size }),
              // What is restored must be what was backed up: a byte changed since is refused
              // here, before anything live is touched (qemu-img check cannot see guest data).
              check: (digest) => {
                if (listed && (digest.size !== listed.size || digest.sha256 !== listed.sha256))
                  throw new BackupError(
                    ErrorCode.corruptImage,
                    `backup file ${f.from} is corrupt: its size ${digest.size} and SHA-256 ${digest.sha256} differ from the backup's manifest (${listed.size}, ${listed.sha256})`,
                  );
              },
              prepare: async (part) => {
                if (!f.image) return setModeOwner(part, { mode: PRIVATE_FILE });
                const result = await check(part);
                if (!result.ok)
                  throw new BackupError(
                    ErrorCode.corruptImage,
                    `backup image ${f.from} is corrupt: ${result.output}`,
                  );
              },
            }),
          );
          return;
        }
      }
    },
  });
}

/** unretain small files: copy the backup's XML and LDIF into the retain directory. */
export async function unretainSmallFiles(deps: NodeDeps, input: VmRunInput): Promise<SmallFiles> {
  const paths = await resolveRunChecked(deps, input);
  if (!(await exists(paths.state.backup)))
    throw new BackupError(ErrorCode.missingFiles, `backup file ${paths.state.backup} is missing`);
  await unretain(
    'unretain-small',
    paths,
    [
      { from: paths.xml.backup, to: paths.xml.retained, image: false },
      { from: paths.ldif.backup, to: paths.ldif.retained, image: false },
    ],
    input.vm,
  );
  const backupXml = await fs.readFile(paths.xml.retained, 'utf8');
  // Only the head: a state file holds the guest's whole RAM.
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
  const paths = await resolveRunChecked(deps, input);
  const files = [
    { from: paths.state.backup, to: paths.state.retained, image: false },
    ...paths.disks.map((d) => ({ from: d.backup, to: d.retained, image: true })),
  ];
  await unretain('unretain-large', paths, files, input.vm);
  let bytes = 0;
  for (const f of files) bytes += (await fs.stat(f.to)).size;
  return { bytes };
}

interface RestoreJournal {
  /** Names this restore's kept-aside images, so that an older restore's are never taken for ours. */
  token: string;
  defined: boolean;
}

async function readRestoreJournal(paths: RunPaths): Promise<RestoreJournal | undefined> {
  try {
    return JSON.parse(
      await fs.readFile(path.join(paths.layout.retainDir, RESTORE_JOURNAL), 'utf8'),
    ) as RestoreJournal;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const writeRestoreJournal = (paths: RunPaths, j: RestoreJournal) =>
  writeFileAtomic(path.join(paths.layout.retainDir, RESTORE_JOURNAL), JSON.stringify(j) + '\n', 0o600);

interface Move {
  target: string;
  retained: string;
  live: string;
}

const keptAsideName = (live: string, token: string) => `${live}.pre-restore-${token}`;

async function observeRestore(
  deps: NodeDeps,
  input: RestoreMachineInput,
  paths: RunPaths,
  moves: Move[],
): Promise<RestoreWorld & { journal?: RestoreJournal | undefined }> {
  const journal = await readRestoreJournal(paths);
  const disks = [];
  for (const m of moves)
    disks.push({
      target: m.target,
      retained: await exists(m.retained),
      live: await exists(m.live),
      keptAside: !!journal && (await exists(keptAsideName(m.live, journal.token))),
    });
  return {
    vm: input.vm,
    journal,
    begun: !!journal,
    finished: await exists(finishedMarker(paths)),
    retainDirExists: await exists(paths.layout.retainDir),
    domain: await observeDomain(deps.virsh, input.vm),
    disks,
    stateRetained: await exists(paths.state.retained),
    defined: !!journal?.defined,
    withState: input.withState,
    startAfter: input.startAfter,
  };
}

async function stopVm(deps: NodeDeps, vm: string, seconds: number): Promise<void> {
  let state = await deps.virsh.state(vm);
  if (state === 'running') {
    await deps.virsh.shutdown(vm).catch(() => undefined);
    for (let i = 0; i < seconds * 4 && state !== 'shut off'; i++) {
      await sleep(250);
      state = await deps.virsh.state(vm);
    }
  }
  if (state !== 'shut off' && state !== undefined) await deps.virsh.destroy(vm);
}

async function restoreAct(
  deps: NodeDeps,
  input: RestoreMachineInput,
  paths: RunPaths,
  moves: Move[],
  a: RestoreAction,
  w: RestoreWorld & { journal?: RestoreJournal | undefined },
): Promise<void> {
  const xmlFile = path.join(paths.layout.retainDir, RESTORE_XML);
  const m = moves.find((x) => x.target === a.target);
  const journal = w.journal!;
  switch (a.kind) {
    case 'begin':
      await writeFileAtomic(xmlFile, input.xml, 0o600);
      return writeRestoreJournal(paths, { token: String(Date.now()), defined: false });
    case 'stop-vm':
      return step(ErrorCode.cannotRestoreMachine, `stop ${input.vm}`, () =>
        stopVm(deps, input.vm, input.shutdownSeconds),
      );
    case 'keep-aside':
      return step(ErrorCode.cannotRenameImage, `keep ${m!.live} aside`, () =>
        durableRename(m!.live, keptAsideName(m!.live, journal.token)),
      );
    case 'place-image':
      return step(ErrorCode.cannotRenameImage, `put the backed-up ${m!.target} in place`, async () => {
        await ensureDir(path.dirname(m!.live));
        await durableRename(m!.retained, m!.live);
      });
    case 'define':
      await step(ErrorCode.cannotDefine, `define ${input.vm} from the resolved XML`, () =>
        deps.virsh.define(xmlFile),
      );
      return writeRestoreJournal(paths, { ...journal, defined: true });
    case 'restore-from-state':
      return step(ErrorCode.cannotRestoreMachine, `restore ${input.vm} from its state`, () =>
        deps.virsh.restore(paths.state.retained, xmlFile),
      );
    case 'start-vm':
      return step(ErrorCode.cannotStart, `start ${input.vm}`, () => deps.virsh.start(input.vm));
    case 'finish': {
      const active = w.domain.state === 'running' || w.domain.state === 'paused';
      const kept = journal ? moves.map((x) => keptAsideName(x.live, journal.token)) : [];
      // The old images go only once the restored VM runs: for a VM left off they stay for an operator.
      const left: string[] = [];
      for (const k of kept) {
        if (!(await exists(k))) continue;
        if (active) await durableUnlink(k);
        else left.push(k);
      }
      await writeFileAtomic(finishedMarker(paths), JSON.stringify({ keptAside: left }) + '\n', 0o600);
      await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
      await syncDir(path.dirname(paths.layout.retainDir));
      return;
    }
  }
}

/**
 * restore: stop the VM, put the backed-up images in place (the live ones are kept aside
 * until the VM runs again), define the resolved XML, and bring the VM back from its saved
 * state with that XML — or leave it defined and off, or start it, for a VM that was off.
 * The domain is never undefined, and re-running after a crash finishes the job.
 */
export async function restoreMachine(
  deps: NodeDeps,
  input: RestoreMachineInput,
): Promise<RestoreMachineResult> {
  const paths = await resolveRunChecked(deps, input);
  // The XML must be the backed-up one, changed only where the user's decisions reach;
  // checked against the file this node wrote, before anything is touched.
  const backupXml = await step(ErrorCode.missingFiles, 'read the backed-up XML', () =>
    fs.readFile(paths.xml.backup, 'utf8'),
  );
  const targets = checkRestoreXml(backupXml, input.xml, {
    vm: input.vm,
    imagesRoot: deps.config.imagesRoot,
    withState: input.withState,
  });
  for (const [target, file] of targets)
    await confineReal(file, [deps.config.imagesRoot], `restore XML: disk ${target}`);
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
  await drive({
    step: 'restore',
    vm: input.vm,
    observe: () => observeRestore(deps, input, paths, moves),
    decide: decideRestore,
    act: (a, w) => restoreAct(deps, input, paths, moves, a, w),
  });
  const marker = JSON.parse(await fs.readFile(finishedMarker(paths), 'utf8')) as { keptAside?: string[] };
  return {
    state: (await deps.virsh.state(input.vm)) ?? 'undefined',
    keptAside: marker.keptAside?.length ? marker.keptAside : undefined,
  };
}

/** Abort: remove what the restore copied into the retain directory; nothing live was touched. */
export async function cleanRestore(deps: NodeDeps, input: VmRunInput): Promise<void> {
  const paths = await resolveRunChecked(deps, input);
  await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
  await durableUnlink(finishedMarker(paths));
}
