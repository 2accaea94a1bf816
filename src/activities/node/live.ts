import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';
import { allDisks, memoryBytes } from '../../domain/domain-xml';
import { stateFileBytes } from '../../domain/save-room';
import {
  decideLiveMerge,
  decideLiveRollback,
  decideLiveSnapshot,
  type LiveAction,
  type LiveMergeAction,
  type LiveRollbackAction,
  type LiveSnapshotAction,
  type LiveWorld,
} from '../../domain/steps/live';
import { isActive } from '../../domain/steps/snapshot';
import { watchLifecycle } from '../../hypervisor/lifecycle';
import { CommandError, TransientCommandError } from '../../hypervisor/run';
import { drive } from './drive';
import { injectedFault } from './failpoints';
import {
  durableCopy,
  partGrowth,
  durableUnlink,
  exists,
  moveFile,
  sameFilesystem,
  setModeOwner,
  writeFileAtomic,
} from './files';
import { assertFreshTarget } from './confine-real';
import { backupImageMode, PRIVATE_FILE } from '../../domain/modes';
import { readJournal, updateJournal as updateJournalIn, writeJournal, type Journal } from './journal';
import { joinLiveGroup, liveGroupDue } from './live-group';
import { inodeOf, observeDomain, qemuOpenFiles } from './observe';
import { withSaveRoom } from './save-slots';
import {
  beginRun,
  currentJournal,
  diskOf,
  observeRunFiles,
  PLACEHOLDER_STATE,
  removeRetainDir,
  saveLdif,
  saveXml,
} from './snapshot';
import { heartbeat, step, type NodeDeps, type RunPaths } from './context';
import type { SnapshotInput, VmRunInput } from './types';

/** What identifies a file's content without reading it: a write changes mtime or ctime. */
async function signature(file: string): Promise<string | undefined> {
  const s = await fs.stat(file).catch(() => undefined);
  return s && `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

export async function frozenSignatures(paths: RunPaths): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const d of paths.disks) out[d.target] = (await signature(d.live)) ?? 'missing';
  return out;
}

function maxCopyMs(deps: NodeDeps): number {
  return (deps.config.liveMaxCopySeconds ?? 120) * 1000;
}

/** Is it time to end the memory copy by pausing: past its bound, or the group's instant? */
function pauseDue(deps: NodeDeps, input: VmRunInput, j: Journal | undefined): boolean {
  if (j?.liveStartedAt === undefined) return false;
  return Date.now() >= j.liveStartedAt + maxCopyMs(deps) || liveGroupDue(input);
}

async function observeLive(
  deps: NodeDeps,
  input: VmRunInput & { ldif?: string | undefined },
  paths: RunPaths,
  commits: Map<string, number>,
): Promise<LiveWorld & { journalRecord?: Journal | undefined }> {
  const journal = await readJournal(paths.layout.retainDir);
  const domain = await observeDomain(deps.virsh, input.vm);
  const active = isActive(domain);
  const sources =
    domain.state === 'absent' ? new Map<string, string>() : await deps.virsh.diskSources(input.vm);
  const held = active ? await qemuOpenFiles(input.vm, deps.config.libvirtRunDir) : new Set<string>();
  const disks = [];
  for (const d of paths.disks) {
    const src = sources.get(d.target);
    const source = src === d.live ? 'image' : src === d.liveOverlay ? 'overlay' : 'other';
    const overlayInode = await inodeOf(d.liveOverlay);
    const frozen = journal?.frozen?.[d.target];
    disks.push({
      target: d.target,
      source,
      imageExists: await exists(d.live),
      overlayExists: overlayInode !== undefined,
      overlayHeld: overlayInode !== undefined && held.has(overlayInode),
      retained: await exists(d.retained),
      imageUnchanged: frozen === undefined || frozen === (await signature(d.live)),
      job: active && source === 'overlay' ? await deps.virsh.blockJob(input.vm, d.target) : undefined,
      commits: commits.get(d.target) ?? 0,
    } as const);
  }
  return {
    vm: input.vm,
    journal: journal && {
      phase: journal.phase,
      mode: journal.mode ?? 'save',
      wasRunning: journal.wasRunning,
      wasPaused: journal.wasPaused,
      liveAttempts: journal.liveAttempts ?? 0,
      liveError: journal.liveError,
      pausedByUs: !!journal.pausedByUs,
      groupMember: !!journal.groupMember,
      mergeStartedVm: !!journal.mergeStartedVm,
      rollingBack: !!journal.rollingBack,
    },
    journalRecord: journal,
    domain,
    disks,
    ...(await observeRunFiles(paths, input)),
    pauseDue: pauseDue(deps, input, journal),
  };
}

function updateJournal(paths: RunPaths, change: Partial<Journal>): Promise<void> {
  return updateJournalIn(paths.layout.retainDir, change);
}

/** Suspends the VM to end its memory copy; a job that ended meanwhile leaves it for `resume`. */
async function pauseToEndCopy(deps: NodeDeps, vm: string, paths: RunPaths): Promise<void> {
  await updateJournal(paths, { pausedByUs: true });
  try {
    await deps.virsh.suspend(vm);
  } catch (err) {
    if (!(err instanceof CommandError)) throw err; // the next observation shows where it stands
  }
}

/**
 * The live snapshot itself: libvirt's job runs (and outlives us if we are killed); while it
 * runs the VM is paused once the copy is due to end. libvirt's refusal is recorded, not
 * thrown: the next decision falls back to save mode with it as the reason.
 */
async function takeLiveSnapshot(deps: NodeDeps, input: SnapshotInput, paths: RunPaths): Promise<void> {
  // libvirt writes the memory file and the overlays: nothing may be at their names yet.
  await assertFreshTarget(paths.state.saved, deps.config.storageRoots, 'memory file');
  for (const d of paths.disks)
    await assertFreshTarget(d.liveOverlay, [deps.config.imagesRoot], `live overlay of ${d.target}`);
  const j = await currentJournal(paths);
  await writeJournal(paths.layout.retainDir, {
    ...j,
    liveAttempts: (j.liveAttempts ?? 0) + 1,
    liveStartedAt: Date.now(),
    pausedByUs: false,
    groupMember: false,
    pausedAt: undefined,
    resumedAt: undefined,
  });
  const needed = stateFileBytes(memoryBytes(await deps.virsh.dumpXml(input.vm)));
  const room = {
    dir: paths.layout.stateSaveDir,
    file: paths.state.saved,
    needed,
    ramDisk: !!input.plan.ramDisk,
  };
  let paused = false;
  const group = input.liveGroup
    ? await joinLiveGroup(deps.virsh, input.liveGroup, input.vm, () => {
        paused = true;
        void updateJournal(paths, { pausedByUs: true }).catch(() => undefined);
      })
    : undefined;
  // A group member may be paused by its group at any moment: recorded before its job starts.
  if (group) await updateJournal(paths, { groupMember: true });
  await withSaveRoom(room, async () => {
    const watch = await watchLifecycle(deps.virsh.uri, input.vm, {
      onSuspended: () => group?.pausedByLibvirt(),
    });
    await group?.ready();
    let ended = false;
    const job = (async () => {
      injectedFault('snapshot:live-snapshot:libvirt');
      await deps.virsh.snapshotLive(
        input.vm,
        paths.state.saved,
        paths.disks.map((d) => ({ target: d.target, file: d.liveOverlay })),
        await removableMedia(deps, input, paths),
      );
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    void job.finally(() => {
      ended = true;
      group?.ended();
    });
    while (!ended) {
      await Promise.race([job, new Promise((r) => setTimeout(r, 25))]);
      if (!ended && !paused && pauseDue(deps, input, await readJournal(paths.layout.retainDir))) {
        paused = true;
        await pauseToEndCopy(deps, input.vm, paths);
      }
    }
    const err = await job;
    // The job returns once libvirt resumed the VM: an upper bound when its event is late.
    const jobEndedAt = Date.now();
    const span = await watch.stop();
    if (err instanceof TransientCommandError) throw err;
    if (err) {
      await updateJournal(paths, { liveError: (err as Error).message });
      return;
    }
    // Guest RAM: only root may read it.
    await setModeOwner(paths.state.saved, { mode: PRIVATE_FILE });
    await updateJournal(paths, {
      pausedAt: span.suspendedAt,
      resumedAt: span.suspendedAt === undefined ? undefined : (span.resumedAt ?? jobEndedAt),
    });
  });
}

/** Disks libvirt has beyond the directory's (CD-ROMs, floppies) stay as they are. */
async function removableMedia(deps: NodeDeps, input: VmRunInput, paths: RunPaths): Promise<string[]> {
  const ours = new Set(paths.disks.map((d) => d.target));
  return allDisks(await deps.virsh.dumpXml(input.vm))
    .filter((d) => !ours.has(d.target))
    .map((d) => d.target);
}

async function fallBack(input: VmRunInput, paths: RunPaths): Promise<void> {
  const j = await currentJournal(paths);
  const reason = j.liveError ?? `the live snapshot did not complete in ${j.liveAttempts ?? 0} attempts`;
  for (const d of paths.disks) {
    if (!(await sameFilesystem(path.dirname(d.live), input.plan.retainRoot)))
      throw new BackupError(
        ErrorCode.cannotSaveState,
        `live snapshot of ${input.vm} failed (${reason}), and save mode needs the retain directory on the filesystem of ${d.live}`,
      );
  }
  await writeJournal(paths.layout.retainDir, { ...j, mode: 'save', fallback: reason });
}

async function copyFrozen(paths: RunPaths, target: string | undefined): Promise<void> {
  const d = diskOf(paths, target);
  const { size } = await fs.stat(d.live);
  await step(ErrorCode.copyImageToBackupFailed, `copy ${d.live} into the retain directory`, () =>
    durableCopy(d.live, d.retained, {
      // cp keeps the live image's mode; others' bits go (the retain directory is searchable).
      prepare: async (part) => setModeOwner(part, { mode: backupImageMode((await fs.lstat(part)).mode) }),
      onProgress: partGrowth(d.retained, (bytes) =>
        heartbeat({ step: 'snapshot', action: 'copy', file: d.target, bytes, total: size }),
      ),
    }),
  );
}

async function liveSnapshotAct(
  deps: NodeDeps,
  input: SnapshotInput,
  paths: RunPaths,
  a: LiveSnapshotAction,
  world: LiveWorld,
): Promise<void> {
  switch (a.kind) {
    case 'begin':
      return beginRun(deps, input, paths, world.domain.state, {
        mode: 'live',
        frozen: world.domain.state === 'shut off' ? await frozenSignatures(paths) : undefined,
      });
    case 'save-xml':
      return saveXml(deps, input, paths);
    case 'save-ldif':
      return saveLdif(input, paths);
    case 'discard-overlay':
      return durableUnlink(diskOf(paths, a.target).liveOverlay);
    case 'remove-state':
      return durableUnlink(paths.state.saved);
    case 'live-snapshot':
      return takeLiveSnapshot(deps, input, paths);
    case 'pause':
      return pauseToEndCopy(deps, input.vm, paths);
    case 'resume':
      return step(ErrorCode.cannotStart, `resume ${input.vm}`, () => deps.virsh.resume(input.vm));
    case 'fall-back':
      return fallBack(input, paths);
    case 'copy-disk':
      return copyFrozen(paths, a.target);
    case 'retain-state':
      return step(ErrorCode.stateFileToRetainFailed, 'move the memory file to the retain directory', () =>
        moveFile(paths.state.saved, paths.state.retained),
      );
    case 'write-placeholder':
      return writeFileAtomic(paths.state.retained, PLACEHOLDER_STATE, PRIVATE_FILE);
    case 'finish': {
      const j = await currentJournal(paths);
      let pauseMs = 0;
      if (j.wasRunning) {
        if (j.pausedAt !== undefined && j.resumedAt !== undefined) pauseMs = j.resumedAt - j.pausedAt;
        else {
          // Nobody watched the events (a crash): QEMU's own figure for the job.
          const last = await deps.virsh.lastJobDowntimeMs(input.vm);
          pauseMs = last.operation === 'Snapshot' ? (last.downtimeMs ?? 0) : 0;
        }
      }
      if (paths.layout.stateSaveDir !== paths.layout.retainDir)
        await fs.rmdir(paths.layout.stateSaveDir).catch(() => undefined);
      await writeJournal(paths.layout.retainDir, {
        ...j,
        phase: 'snapshotted',
        snapshotMs: j.snapshotMs ?? Date.now() - j.startedAt,
        downtimeMs: j.downtimeMs ?? pauseMs,
      });
      return;
    }
  }
}

/** Commit actions shared by the merge and the rollback. */
async function commitAct(
  deps: NodeDeps,
  input: VmRunInput,
  paths: RunPaths,
  commits: Map<string, number>,
  a: LiveAction,
): Promise<boolean> {
  switch (a.kind) {
    case 'start-paused':
      // Recorded first: after a crash only the journal tells that this paused VM is ours to stop.
      await updateJournal(paths, { mergeStartedVm: true });
      await step(ErrorCode.cannotStart, `start ${input.vm} paused for the commit`, () =>
        deps.virsh.start(input.vm, true),
      );
      return true;
    case 'start-commit':
      await step(ErrorCode.mergeFailed, `commit of ${a.target}`, () =>
        deps.virsh.startActiveCommit(input.vm, a.target!, input.plan.mergeBandwidth),
      );
      commits.set(a.target!, (commits.get(a.target!) ?? 0) + 1);
      return true;
    case 'pivot':
      try {
        await deps.virsh.pivot(input.vm, a.target!);
      } catch (err) {
        // Copied but not yet ready (QEMU still converging): look again shortly.
        if (!(err instanceof CommandError) || !/not ready|ready for pivot/i.test(err.stderr))
          throw new BackupError(ErrorCode.mergeFailed, `pivot of ${a.target}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      return true;
    case 'discard-overlay':
      await durableUnlink(diskOf(paths, a.target).liveOverlay);
      return true;
    case 'stop-vm':
      await step(ErrorCode.mergeFailed, `stop ${input.vm} again after the commit`, () =>
        deps.virsh.destroy(input.vm),
      );
      return true;
  }
  return false;
}

async function liveMergeAct(
  deps: NodeDeps,
  input: VmRunInput,
  paths: RunPaths,
  commits: Map<string, number>,
  a: LiveMergeAction,
): Promise<void> {
  if (await commitAct(deps, input, paths, commits, a)) return;
  if (a.kind === 'finish') await updateJournal(paths, { phase: 'merged', mergeStartedVm: false });
}

async function liveRollbackAct(
  deps: NodeDeps,
  input: VmRunInput,
  paths: RunPaths,
  commits: Map<string, number>,
  a: LiveRollbackAction,
): Promise<void> {
  if (await commitAct(deps, input, paths, commits, a)) return;
  switch (a.kind) {
    case 'resume':
      return step(ErrorCode.cannotStart, `resume ${input.vm}`, () => deps.virsh.resume(input.vm));
    case 'remove-retain-dir':
      return removeRetainDir(paths);
  }
}

/** The live snapshot's machine; `fell-back` when the run continues in save mode. */
export function liveSnapshot(
  deps: NodeDeps,
  input: SnapshotInput,
  paths: RunPaths,
): Promise<'snapshotted' | 'fell-back'> {
  const commits = new Map<string, number>();
  return drive({
    step: 'snapshot',
    vm: input.vm,
    observe: () => observeLive(deps, input, paths, commits),
    decide: decideLiveSnapshot,
    act: (a, w) => liveSnapshotAct(deps, input, paths, a, w),
    waitMs: 50,
  });
}

export async function liveMerge(deps: NodeDeps, input: VmRunInput, paths: RunPaths): Promise<void> {
  const commits = new Map<string, number>();
  await drive({
    step: 'merge',
    vm: input.vm,
    observe: () => observeLive(deps, input, paths, commits),
    decide: decideLiveMerge,
    act: (a) => liveMergeAct(deps, input, paths, commits, a),
    waitMs: 250,
  });
}

export async function liveRollback(
  deps: NodeDeps,
  input: VmRunInput,
  paths: RunPaths,
): Promise<'rolled-back' | 'completed'> {
  const commits = new Map<string, number>();
  const j = await readJournal(paths.layout.retainDir);
  // Recorded first: a snapshot retried after a crash in the rollback rolls back too.
  if (j && j.phase === 'prepared' && !j.rollingBack)
    await writeJournal(paths.layout.retainDir, { ...j, rollingBack: true });
  const outcome = await drive({
    step: 'rollback',
    vm: input.vm,
    observe: () => observeLive(deps, input, paths, commits),
    decide: decideLiveRollback,
    act: (a) => liveRollbackAct(deps, input, paths, commits, a),
    waitMs: 250,
  });
  // A snapshot that had everything is finished instead: it may go on.
  if (outcome === 'completed') await updateJournal(paths, { rollingBack: false });
  return outcome;
}
