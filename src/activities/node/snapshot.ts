import { promises as fs, statfsSync } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';
import { allDisks, memoryBytes, withBackingFiles } from '../../domain/domain-xml';
import { isInside } from '../../domain/paths';
import { stateFileBytes } from '../../domain/save-room';
import {
  decideRollback,
  decideSnapshot,
  isActive,
  type RollbackAction,
  type SnapshotAction,
  type SnapshotWorld,
} from '../../domain/steps/snapshot';
import { backingChain, createOverlay, imageInfo, topHasData } from '../../hypervisor/qemu-img';
import { liveObstacle } from '../../domain/steps/live';
import { drive } from './drive';
import { liveRollback, liveSnapshot } from './live';
import { withSaveRoom } from './save-slots';
import {
  allocatedBytes,
  chown,
  durableRename,
  durableUnlink,
  ensureDir,
  exists,
  moveFile,
  partGrowth,
  setModeOwner,
  syncDir,
  writeFileAtomic,
} from './files';
import { assertFreshTarget } from './confine-real';
import { PRIVATE_DIR, PRIVATE_FILE, runDirMode } from '../../domain/modes';
import { readJournal, writeJournal, type Journal } from './journal';
import { inodeOf, isOverlayOf, observeDomain, qemuOpenFiles } from './observe';
import { heartbeat, resolveRunChecked, step, type DiskPaths, type NodeDeps, type RunPaths } from './context';
import type { AbortSnapshotResult, InspectResult, SnapshotInput, SnapshotResult, VmRunInput } from './types';

export const PLACEHOLDER_STATE = 'Machine is not running, no state file\n';

/**
 * Every disk libvirt gives the VM must be one the directory knows, a qcow2 file whose
 * whole chain we back up: otherwise a backup would be reported complete without it.
 */
async function checkDisks(xml: string, paths: RunPaths, retainRoot: string): Promise<void> {
  const known = new Map(paths.disks.map((d) => [d.target, d.live]));
  for (const d of allDisks(xml)) {
    if (d.device === 'cdrom' || d.device === 'floppy') continue; // removable media, not VM data
    if (d.type !== 'file')
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `disk ${d.target} is a ${d.type} disk; only file disks can be backed up`,
      );
    if (!known.has(d.target))
      throw new BackupError(
        ErrorCode.directoryXmlInconsistency,
        `disk ${d.target} (${d.source ?? 'no source'}) is in libvirt but not in the directory: it would be missing from the backup`,
      );
    if (known.get(d.target) !== d.source)
      throw new BackupError(
        ErrorCode.directoryXmlInconsistency,
        `disk ${d.target}: the directory says ${known.get(d.target)}, libvirt says ${d.source ?? 'nothing'}`,
      );
  }
  const inXml = new Set(allDisks(xml).map((d) => d.target));
  for (const d of paths.disks) {
    if (!inXml.has(d.target))
      throw new BackupError(
        ErrorCode.directoryXmlInconsistency,
        `disk ${d.target}: the directory says ${d.live}, libvirt says nothing`,
      );
  }
  for (const d of paths.disks) {
    const chain = await step(ErrorCode.missingFiles, `disk ${d.target} (${d.live})`, () =>
      backingChain(d.live),
    );
    const top = chain[0]!;
    if (top.format !== 'qcow2')
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `disk ${d.target} is ${top.format}, not qcow2`,
      );
    const backing = top.fullBackingFilename;
    if (backing && isInside(retainRoot, backing))
      throw new BackupError(
        ErrorCode.wrongStateInformation,
        `disk ${d.target} still depends on ${backing}: an earlier backup was not merged`,
      );
    if (backing)
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `disk ${d.target} is backed by ${backing}: a backup of its top layer alone would not restore, and the merge would flatten it`,
      );
  }
}

/**
 * Non-destructive checks on the node before anything is touched: the VM exists, libvirt
 * and the directory agree on every disk, the images are where the plan expects them, the
 * retain directory is on the images' filesystem, and there is room for the state file.
 */
export async function inspectForSnapshot(deps: NodeDeps, input: VmRunInput): Promise<InspectResult> {
  const paths = await resolveRunChecked(deps, input);
  const state = await deps.virsh.state(input.vm);
  if (state === undefined)
    throw new BackupError(ErrorCode.cannotFindMachine, `VM ${input.vm} is not defined on this node`);
  if (state === 'other')
    throw new BackupError(
      ErrorCode.wrongStateInformation,
      `VM ${input.vm} is neither running, paused nor shut off`,
    );
  const xml = await deps.virsh.dumpXml(input.vm);
  const journal = await readJournal(paths.layout.retainDir);
  if (!journal) {
    await checkDisks(xml, paths, input.plan.retainRoot);
    if (await exists(paths.layout.retainDir)) {
      const leftovers = (await fs.readdir(paths.layout.retainDir)).filter((f) => !f.endsWith('.tmp'));
      const ours = new Set([path.basename(paths.xml.retained), path.basename(paths.ldif.retained)]);
      if (leftovers.some((f) => !ours.has(f)))
        throw new BackupError(
          ErrorCode.wrongStateInformation,
          `retain directory ${paths.layout.retainDir} already holds files of another attempt`,
        );
    }
  }
  if (input.plan.ramDisk && !(await exists(input.plan.ramDisk)))
    throw new BackupError(ErrorCode.ramDiskInvalid, `RAM disk ${input.plan.ramDisk} does not exist`);
  const mem = memoryBytes(xml);
  if (state !== 'shut off' && !journal) {
    const saveDir = input.plan.ramDisk ?? input.plan.retainRoot;
    if (!(await exists(saveDir)))
      throw new BackupError(ErrorCode.retainRootMissing, `${saveDir} does not exist`);
    let total: number;
    try {
      const s = statfsSync(saveDir);
      total = s.blocks * s.bsize;
    } catch (err) {
      throw new BackupError(
        ErrorCode.noDiskSpaceInformation,
        `cannot read free space of ${saveDir}: ${(err as Error).message}`,
      );
    }
    // The state file holds at most the guest's RAM plus device state. Room beside the node's
    // other saves is waited for at the save; only a state that can never fit fails here.
    const needed = stateFileBytes(mem);
    if (total < needed)
      throw new BackupError(
        input.plan.ramDisk ? ErrorCode.ramDiskTooSmall : ErrorCode.notEnoughDiskSpace,
        `${saveDir} holds ${total} bytes in all, the state file needs up to ${needed}`,
      );
  }
  if (!(await exists(input.plan.retainRoot)))
    throw new BackupError(
      ErrorCode.retainRootMissing,
      `retain directory ${input.plan.retainRoot} does not exist`,
    );
  const live = journal
    ? journal.mode === 'live'
    : (input.plan.mode ?? 'live') === 'live' && !liveObstacle(xml);
  if (live) {
    if (!journal) await checkRoomForCopies(paths, input.plan.retainRoot);
    return { state, memoryBytes: mem };
  }
  for (const d of paths.disks) {
    const { dev: a } = await fs.stat(path.dirname(d.live));
    const { dev: b } = await fs.stat(input.plan.retainRoot);
    if (a !== b)
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `retain directory ${input.plan.retainRoot} is not on the filesystem of ${d.live}: moving the image would take the VM down for a full copy`,
      );
  }
  return { state, memoryBytes: mem };
}

/** Live mode copies each frozen image into the retain directory: there must be room for all. */
async function checkRoomForCopies(paths: RunPaths, retainRoot: string): Promise<void> {
  let needed = 0;
  for (const d of paths.disks) needed += await allocatedBytes(d.live);
  let free: number;
  try {
    const s = statfsSync(retainRoot);
    free = s.bavail * s.bsize;
  } catch (err) {
    throw new BackupError(
      ErrorCode.noDiskSpaceInformation,
      `cannot read free space of ${retainRoot}: ${(err as Error).message}`,
    );
  }
  if (free < needed)
    throw new BackupError(
      ErrorCode.notEnoughDiskSpace,
      `${retainRoot} has ${free} bytes free, the copies of the disks need ${needed}`,
    );
}

/** The world as a snapshot or its rollback sees it: journal, libvirt, files, open inodes. */
async function observeSnapshot(
  deps: NodeDeps,
  input: VmRunInput & { ldif?: string | undefined },
  paths: RunPaths,
  forRollback = false,
): Promise<SnapshotWorld & { journalRecord?: Journal | undefined }> {
  const journal = await readJournal(paths.layout.retainDir);
  const domain = await observeDomain(deps.virsh, input.vm);
  const held = isActive(domain)
    ? await qemuOpenFiles(input.vm, deps.config.libvirtRunDir)
    : new Set<string>();
  const disks = [];
  for (const d of paths.disks) {
    const liveExists = await exists(d.live);
    const retained = await exists(d.retained);
    const live = !liveExists ? 'missing' : (await isOverlayOf(d.live, d.retained)) ? 'overlay' : 'image';
    const liveInode = liveExists ? await inodeOf(d.live) : undefined;
    const retainedInode = retained ? await inodeOf(d.retained) : undefined;
    const heldLive = !!liveInode && held.has(liveInode);
    disks.push({
      target: d.target,
      live,
      retained,
      prepared: await exists(d.overlay),
      held: { live: heldLive, retained: !!retainedInode && held.has(retainedInode) },
      // Only a rollback discards overlays, and only one no VM has open: only then does its
      // content matter (the snapshot's downtime window stays free of the extra read).
      overlayHasData: forRollback && live === 'overlay' && !heldLive ? await topHasData(d.live) : false,
    } as const);
  }
  return {
    vm: input.vm,
    journal: journal && {
      phase: journal.phase,
      wasRunning: journal.wasRunning,
      wasPaused: journal.wasPaused,
    },
    journalRecord: journal,
    domain,
    disks,
    ...(await observeRunFiles(paths, input)),
  };
}

/** Which of a run's small files exist (both modes' snapshots and rollbacks look at them). */
export async function observeRunFiles(
  paths: RunPaths,
  input: { ldif?: string | undefined },
): Promise<
  Pick<
    SnapshotWorld,
    'retainDirExists' | 'xmlSaved' | 'ldifSaved' | 'ldifGiven' | 'stateSaved' | 'stateRetained'
  >
> {
  const stateSaved = await exists(paths.state.saved);
  return {
    retainDirExists: await exists(paths.layout.retainDir),
    xmlSaved: await exists(paths.xml.retained),
    ldifSaved: await exists(paths.ldif.retained),
    ldifGiven: !!input.ldif,
    stateSaved,
    stateRetained:
      paths.state.saved === paths.state.retained ? stateSaved : await exists(paths.state.retained),
  };
}

export function diskOf(paths: RunPaths, target: string | undefined): DiskPaths {
  const d = paths.disks.find((x) => x.target === target);
  if (!d) throw new Error(`no disk ${target}`);
  return d;
}

export async function currentJournal(paths: RunPaths): Promise<Journal> {
  const j = await readJournal(paths.layout.retainDir);
  if (!j)
    throw new BackupError(
      ErrorCode.wrongStateInformation,
      `the journal of ${paths.layout.retainDir} is gone`,
    );
  return j;
}

/** An overlay next to the live image, made whole under a temporary name and renamed into place. */
async function prepareOverlay(deps: NodeDeps, input: VmRunInput, d: DiskPaths): Promise<void> {
  const source = (await exists(d.live)) ? d.live : d.retained;
  const { virtualSize } = await imageInfo(source);
  const tmp = `${d.overlay}.tmp`;
  await durableUnlink(tmp);
  // qemu-img creates it: nothing may be at the name, its directory a real one.
  await assertFreshTarget(tmp, [deps.config.imagesRoot], `overlay of ${d.target}`);
  await step(ErrorCode.cannotCreateEmptyImage, `create overlay for ${d.target}`, async () => {
    await createOverlay(tmp, d.retained, virtualSize);
    // The live image's permission: QEMU opens it.
    await setModeOwner(tmp, { mode: input.plan.imagePermission });
  });
  await step(ErrorCode.imageOwner, `owner of ${d.overlay}`, () =>
    chown(tmp, input.plan.imageOwner, input.plan.imageGroup),
  );
  await durableRename(tmp, d.overlay);
}

/** The XML to restore with: the saved one, each disk now backed by its retained image. */
async function restoreXml(deps: NodeDeps, paths: RunPaths): Promise<string> {
  const saved = await deps.virsh.saveImageXml(paths.state.saved);
  const file = path.join(paths.layout.retainDir, '.restore.xml');
  await writeFileAtomic(
    file,
    withBackingFiles(saved, new Map(paths.disks.map((d) => [d.target, d.retained]))),
    PRIVATE_FILE,
  );
  return file;
}

/**
 * The run's retain directory (and its directory on the RAM disk) with the journal in it:
 * from here on every file the run makes is known to be its own.
 */
export async function beginRun(
  deps: NodeDeps,
  input: SnapshotInput,
  paths: RunPaths,
  state: SnapshotWorld['domain']['state'],
  extra: Partial<Journal>,
): Promise<void> {
  const plan = input.plan;
  await inspectForSnapshot(deps, input);
  await step(ErrorCode.cannotCreateDirectory, `create ${paths.layout.retainDir}`, () =>
    ensureDir(paths.layout.retainDir, {
      mode: runDirMode(plan.directoryPermission, 'retain'),
      user: plan.directoryOwner,
      group: plan.directoryGroup,
    }),
  );
  if (plan.ramDisk)
    await step(ErrorCode.ramDiskInvalid, 'RAM disk directory', () =>
      ensureDir(paths.layout.stateSaveDir, { mode: PRIVATE_DIR }),
    );
  await writeJournal(paths.layout.retainDir, {
    vm: input.vm,
    runDate: input.runDate,
    phase: 'prepared',
    wasRunning: state !== 'shut off',
    wasPaused: state === 'paused',
    startedAt: Date.now(),
    ...extra,
  });
}

/** The persistent XML (what a restore defines), taken before anything changes it. */
export function saveXml(deps: NodeDeps, input: SnapshotInput, paths: RunPaths): Promise<void> {
  return step(ErrorCode.cannotSaveXml, 'save the XML', async () =>
    writeFileAtomic(paths.xml.retained, await deps.virsh.dumpInactiveXml(input.vm), 0o600),
  );
}

export function saveLdif(input: SnapshotInput, paths: RunPaths): Promise<void> {
  return step(ErrorCode.cannotSaveDirectoryEntry, 'save the directory entry', () =>
    writeFileAtomic(paths.ldif.retained, input.ldif, 0o600),
  );
}

async function snapshotAct(
  deps: NodeDeps,
  input: SnapshotInput,
  paths: RunPaths,
  a: SnapshotAction,
  world: SnapshotWorld,
  fallback?: string,
): Promise<void> {
  const plan = input.plan;
  switch (a.kind) {
    case 'begin':
      return beginRun(deps, input, paths, world.domain.state, { mode: 'save', fallback });
    case 'save-xml':
      return saveXml(deps, input, paths);
    case 'save-ldif':
      return saveLdif(input, paths);
    case 'prepare-overlay':
      return prepareOverlay(deps, input, diskOf(paths, a.target));
    case 'save-state': {
      const needed = stateFileBytes(memoryBytes(await deps.virsh.dumpXml(input.vm)));
      const room = {
        dir: paths.layout.stateSaveDir,
        file: paths.state.saved,
        needed,
        ramDisk: !!plan.ramDisk,
      };
      // Waits, VM still running, until the node's other saves leave room for this state file.
      return withSaveRoom(room, async () => {
        // --- downtime window starts: the VM stops running here ---
        await writeJournal(paths.layout.retainDir, {
          ...(await currentJournal(paths)),
          saveStartedAt: Date.now(),
        });
        await durableUnlink(paths.state.saved);
        // libvirt writes it: nothing at the name, the directory a real one inside the roots.
        await assertFreshTarget(paths.state.saved, deps.config.storageRoots, 'state file');
        await step(ErrorCode.cannotSaveState, 'save the VM state', () =>
          deps.virsh.save(input.vm, paths.state.saved),
        );
        // Guest RAM: only root may read it.
        await setModeOwner(paths.state.saved, { mode: PRIVATE_FILE });
      });
    }
    case 'move-disk': {
      const d = diskOf(paths, a.target);
      return step(ErrorCode.cannotRenameImage, `move ${d.live} to the retain directory`, () =>
        durableRename(d.live, d.retained),
      );
    }
    case 'place-overlay': {
      const d = diskOf(paths, a.target);
      return step(ErrorCode.cannotRenameImage, `put the overlay in place of ${d.live}`, () =>
        durableRename(d.overlay, d.live),
      );
    }
    case 'restore-vm': {
      const xml = await restoreXml(deps, paths);
      const journal = await currentJournal(paths);
      await step(ErrorCode.cannotRestoreMachine, 'restore the VM from its state', () =>
        deps.virsh.restore(paths.state.saved, xml, journal.wasPaused),
      );
      // --- downtime window ends ---
      await writeJournal(paths.layout.retainDir, { ...journal, restoredAt: Date.now() });
      return;
    }
    case 'retain-state': {
      // From the RAM disk it is a copy of the whole state: GiBs the progress shows.
      const file = path.basename(paths.state.retained);
      const total = (await fs.stat(paths.state.saved).catch(() => undefined))?.size;
      return step(ErrorCode.stateFileToRetainFailed, 'move the state file to the retain directory', () =>
        moveFile(paths.state.saved, paths.state.retained, {
          onProgress: partGrowth(paths.state.retained, (bytes) =>
            heartbeat({ step: 'snapshot', action: 'retain-state', file, bytes, total }),
          ),
        }),
      );
    }
    case 'write-placeholder':
      return writeFileAtomic(paths.state.retained, PLACEHOLDER_STATE, PRIVATE_FILE);
    case 'finish': {
      const j = await currentJournal(paths);
      const now = Date.now();
      await fs.rm(path.join(paths.layout.retainDir, '.restore.xml'), { force: true });
      // The VM's directory on the RAM disk is empty once its state moved on.
      if (paths.layout.stateSaveDir !== paths.layout.retainDir)
        await fs.rmdir(paths.layout.stateSaveDir).catch(() => undefined);
      await writeJournal(paths.layout.retainDir, {
        ...j,
        phase: 'snapshotted',
        snapshotMs: j.snapshotMs ?? now - j.startedAt,
        // After a crash inside the window the journal's marks stand in (an overestimate).
        downtimeMs:
          j.downtimeMs ?? (j.wasRunning ? (j.restoredAt ?? now) - (j.saveStartedAt ?? j.startedAt) : 0),
      });
      return;
    }
  }
}

function resultOf(j: Journal): SnapshotResult {
  return {
    wasRunning: j.wasRunning,
    downtimeMs: j.downtimeMs ?? 0,
    snapshotMs: j.snapshotMs ?? 0,
    mode: j.mode ?? 'save',
    ...(j.fallback !== undefined && { fallback: j.fallback }),
    ...(j.pausedAt !== undefined && { pausedAt: j.pausedAt }),
    ...(j.pausedByUs && { forcedPause: true }),
  };
}

/**
 * snapshot: save the VM's state, move every disk into the retain directory, put a new
 * overlay backed by it in its place, and bring the VM back from its state. Each action is
 * chosen afresh from the world (journal, libvirt, files), so a re-run after a crash at
 * any instant continues; when it cannot, the snapshot is rolled back.
 */
export async function snapshot(deps: NodeDeps, input: SnapshotInput): Promise<SnapshotResult> {
  const paths = await resolveRunChecked(deps, input);
  const journal = await readJournal(paths.layout.retainDir);
  const mode = journal ? { mode: journal.mode ?? 'save' } : await chooseMode(deps, input);
  try {
    if (mode.mode === 'live' && (await liveSnapshot(deps, input, paths)) === 'snapshotted')
      return resultOf(await currentJournal(paths));
    await drive({
      step: 'snapshot',
      vm: input.vm,
      observe: () => observeSnapshot(deps, input, paths),
      decide: decideSnapshot,
      act: (a, w) => snapshotAct(deps, input, paths, a, w, mode.fallback),
    });
  } catch (err) {
    if (err instanceof BackupError) {
      // Put the VM back on its original disks; the workflow's own rollback then finds it done.
      const outcome = await rollbackSnapshot(deps, input, paths).catch(() => undefined);
      if (outcome === 'completed') return snapshot(deps, { ...input, ldif: '' });
    }
    throw err;
  }
  return resultOf(await currentJournal(paths));
}

/**
 * How a new run snapshots: the plan's mode, unless live mode cannot work for this VM (the
 * reason then goes into the journal and the result).
 */
export async function chooseMode(
  deps: NodeDeps,
  input: VmRunInput,
): Promise<{ mode: 'live' | 'save'; fallback?: string | undefined }> {
  if ((input.plan.mode ?? 'live') === 'save') return { mode: 'save' };
  const obstacle = liveObstacle(await deps.virsh.dumpXml(input.vm));
  return obstacle ? { mode: 'save', fallback: obstacle } : { mode: 'live' };
}

async function rollbackAct(deps: NodeDeps, paths: RunPaths, a: RollbackAction, vm: string): Promise<void> {
  switch (a.kind) {
    case 'discard-prepared': {
      const d = diskOf(paths, a.target);
      await durableUnlink(`${d.overlay}.tmp`);
      return durableUnlink(d.overlay);
    }
    case 'discard-overlay':
      return durableUnlink(diskOf(paths, a.target).live);
    case 'move-back': {
      const d = diskOf(paths, a.target);
      return step(ErrorCode.cannotMoveImageBack, `move ${d.retained} back`, () =>
        durableRename(d.retained, d.live),
      );
    }
    case 'restore-original': {
      const journal = await currentJournal(paths);
      const state = (await exists(paths.state.saved)) ? paths.state.saved : paths.state.retained;
      // The saved XML describes the original images, exactly as they are again now.
      await step(ErrorCode.cannotRestoreMachine, 'restore the VM from its state', async () => {
        const xml = path.join(paths.layout.retainDir, '.rollback.xml');
        await writeFileAtomic(xml, await deps.virsh.saveImageXml(state), PRIVATE_FILE);
        await deps.virsh.restore(state, xml, journal.wasPaused);
      });
      return;
    }
    case 'start-vm': {
      const journal = await currentJournal(paths);
      return step(ErrorCode.cannotStart, 'start the VM', () => deps.virsh.start(vm, journal.wasPaused));
    }
    case 'remove-state':
      await durableUnlink(paths.state.saved);
      return durableUnlink(paths.state.retained);
    case 'remove-retain-dir':
      return removeRetainDir(paths);
  }
}

/** The run's retain directory and its state file on the RAM disk: the last of a rollback. */
export async function removeRetainDir(paths: RunPaths): Promise<void> {
  await durableUnlink(paths.state.saved);
  await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
  await syncDir(path.dirname(paths.layout.retainDir)).catch(() => undefined);
  if (paths.layout.stateSaveDir !== paths.layout.retainDir)
    await fs.rmdir(paths.layout.stateSaveDir).catch(() => undefined);
}

/**
 * Undoes a snapshot that did not finish: discards overlays that hold no guest data, moves
 * each retained image back and brings the VM back as it was. A VM that already runs on its
 * overlays keeps them (its new writes are there): the snapshot is completed instead.
 */
export async function rollbackSnapshot(
  deps: NodeDeps,
  input: VmRunInput,
  given?: RunPaths,
): Promise<AbortSnapshotResult> {
  const paths = given ?? (await resolveRunChecked(deps, input));
  if ((await readJournal(paths.layout.retainDir))?.mode === 'live') return liveRollback(deps, input, paths);
  return drive({
    step: 'rollback',
    vm: input.vm,
    observe: () => observeSnapshot(deps, input, paths, true),
    decide: decideRollback,
    act: (a) => rollbackAct(deps, paths, a, input.vm),
  });
}
