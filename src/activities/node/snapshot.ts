import { promises as fs, statfsSync } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';
import { fileDisks, memoryBytes, withBackingFiles } from '../../domain/domain-xml';
import { isInside } from '../../domain/paths';
import { createOverlay, imageInfo, mapHasNoData } from '../../hypervisor/qemu-img';
import { failpoint } from './failpoints';
import { chown, ensureDir, exists, moveFile, syncDir, writeFileAtomic } from './files';
import { readJournal, writeJournal, type Journal } from './journal';
import { heartbeat, resolveRun, step, type NodeDeps, type RunPaths } from './context';
import type { AbortSnapshotResult, InspectResult, SnapshotInput, SnapshotResult, VmRunInput } from './types';

export const PLACEHOLDER_STATE = 'Machine is not running, no state file\n';

/**
 * Non-destructive checks on the node before anything is touched: the VM exists, libvirt
 * and the directory agree on its disks, the images are where the plan expects them, the
 * retain directory is on the images' filesystem, and there is room for the state file.
 */
export async function inspectForSnapshot(deps: NodeDeps, input: VmRunInput): Promise<InspectResult> {
  const paths = resolveRun(deps, input);
  const state = await deps.virsh.state(input.vm);
  if (state === undefined)
    throw new BackupError(ErrorCode.cannotFindMachine, `VM ${input.vm} is not defined on this node`);
  if (state === 'other')
    throw new BackupError(
      ErrorCode.wrongStateInformation,
      `VM ${input.vm} is neither running, paused nor shut off`,
    );
  const xml = await deps.virsh.dumpXml(input.vm);
  const libvirtDisks = fileDisks(xml);
  for (const d of paths.disks) {
    if (libvirtDisks.get(d.target) !== d.live) {
      throw new BackupError(
        ErrorCode.directoryXmlInconsistency,
        `disk ${d.target}: the directory says ${d.live}, libvirt says ${libvirtDisks.get(d.target) ?? 'nothing'}`,
      );
    }
  }
  const journal = await readJournal(paths.layout.retainDir);
  if (!journal) {
    if (await exists(paths.layout.retainDir)) {
      const leftovers = (await fs.readdir(paths.layout.retainDir)).filter((f) => !f.endsWith('.tmp'));
      const ours = new Set([path.basename(paths.xml.retained), path.basename(paths.ldif.retained)]);
      if (leftovers.some((f) => !ours.has(f))) {
        throw new BackupError(
          ErrorCode.wrongStateInformation,
          `retain directory ${paths.layout.retainDir} already holds files of another attempt`,
        );
      }
    }
    for (const d of paths.disks) {
      const info = await step(ErrorCode.missingFiles, `disk ${d.target} (${d.live})`, () =>
        imageInfo(d.live),
      );
      if (info.format !== 'qcow2')
        throw new BackupError(
          ErrorCode.unsupportedConfigurationValue,
          `disk ${d.target} is ${info.format}, not qcow2`,
        );
      const backing = info.fullBackingFilename;
      if (backing && isInside(input.plan.retainRoot, backing)) {
        throw new BackupError(
          ErrorCode.wrongStateInformation,
          `disk ${d.target} still depends on ${backing}: an earlier backup was not merged`,
        );
      }
    }
  }
  if (input.plan.ramDisk && !(await exists(input.plan.ramDisk))) {
    throw new BackupError(ErrorCode.ramDiskInvalid, `RAM disk ${input.plan.ramDisk} does not exist`);
  }
  const mem = memoryBytes(xml);
  if (state !== 'shut off') {
    const saveDir = input.plan.ramDisk ?? input.plan.retainRoot;
    if (!(await exists(saveDir)))
      throw new BackupError(ErrorCode.retainRootMissing, `${saveDir} does not exist`);
    let free: number;
    try {
      const s = statfsSync(saveDir);
      free = s.bavail * s.bsize;
    } catch (err) {
      throw new BackupError(
        ErrorCode.noDiskSpaceInformation,
        `cannot read free space of ${saveDir}: ${(err as Error).message}`,
      );
    }
    // The state file holds at most the guest's RAM plus device state.
    const needed = Math.ceil(mem * 1.1) + 16 * 1024 * 1024;
    if (free < needed) {
      throw new BackupError(
        input.plan.ramDisk ? ErrorCode.ramDiskTooSmall : ErrorCode.notEnoughDiskSpace,
        `${saveDir} has ${free} bytes free, the state file needs up to ${needed}`,
      );
    }
  }
  if (!(await exists(input.plan.retainRoot)))
    throw new BackupError(
      ErrorCode.retainRootMissing,
      `retain directory ${input.plan.retainRoot} does not exist`,
    );
  for (const d of paths.disks) {
    const { dev: a } = await fs.stat(path.dirname(d.live));
    const { dev: b } = await fs.stat(input.plan.retainRoot);
    if (a !== b) {
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `retain directory ${input.plan.retainRoot} is not on the filesystem of ${d.live}: moving the image would take the VM down for a full copy`,
      );
    }
  }
  return { state, memoryBytes: mem };
}

async function prepare(deps: NodeDeps, input: SnapshotInput, paths: RunPaths): Promise<Journal> {
  const inspected = await inspectForSnapshot(deps, input);
  const plan = input.plan;
  await step(ErrorCode.cannotCreateDirectory, `create ${paths.layout.retainDir}`, () =>
    ensureDir(paths.layout.retainDir, {
      mode: plan.directoryPermission,
      user: plan.directoryOwner,
      group: plan.directoryGroup,
    }),
  );
  if (plan.ramDisk)
    await step(ErrorCode.ramDiskInvalid, 'RAM disk directory', () => ensureDir(paths.layout.stateSaveDir));
  await step(ErrorCode.cannotSaveXml, 'save the XML', async () =>
    writeFileAtomic(paths.xml.retained, await deps.virsh.dumpInactiveXml(input.vm)),
  );
  await step(ErrorCode.cannotSaveDirectoryEntry, 'save the directory entry', () =>
    writeFileAtomic(paths.ldif.retained, input.ldif),
  );
  // Overlays are made before the VM stops so that the downtime window holds only renames.
  for (const d of paths.disks) {
    const { virtualSize } = await imageInfo(d.live);
    await step(ErrorCode.cannotCreateEmptyImage, `create overlay for ${d.target}`, async () => {
      await createOverlay(d.overlay, d.retained, virtualSize);
      await fs.chmod(d.overlay, plan.imagePermission);
    });
    await step(ErrorCode.imageOwner, `owner of ${d.overlay}`, () =>
      chown(d.overlay, plan.imageOwner, plan.imageGroup),
    );
  }
  const journal: Journal = {
    vm: input.vm,
    runDate: input.runDate,
    phase: 'prepared',
    wasRunning: inspected.state !== 'shut off',
    wasPaused: inspected.state === 'paused',
    startedAt: Date.now(),
  };
  if (journal.wasRunning) journal.saveStartedAt = Date.now();
  await writeJournal(paths.layout.retainDir, journal);
  return journal;
}

/** Is `live` the overlay we made over `retained`? */
async function isOurOverlay(live: string, retained: string): Promise<boolean> {
  if (!(await exists(live))) return false;
  const info = await imageInfo(live);
  return info.fullBackingFilename === retained || info.backingFilename === retained;
}

/** Moves one disk into the retain directory and puts the prepared overlay in its place. */
async function swapDisk(d: RunPaths['disks'][number]): Promise<void> {
  const liveExists = await exists(d.live);
  const retainedExists = await exists(d.retained);
  if (liveExists && retainedExists) {
    if (await isOurOverlay(d.live, d.retained)) return;
    throw new BackupError(
      ErrorCode.wrongStateInformation,
      `both ${d.live} and ${d.retained} exist and the live image is not our overlay`,
    );
  }
  if (liveExists) {
    await step(ErrorCode.cannotRenameImage, `move ${d.live} to the retain directory`, () =>
      fs.rename(d.live, d.retained),
    );
    failpoint('snapshot-after-move');
  } else if (!retainedExists) {
    throw new BackupError(
      ErrorCode.missingFiles,
      `disk ${d.target}: neither ${d.live} nor ${d.retained} exists`,
    );
  }
  if (!(await exists(d.overlay))) {
    const { virtualSize } = await imageInfo(d.retained);
    await step(ErrorCode.cannotCreateEmptyImage, `create overlay ${d.overlay}`, () =>
      createOverlay(d.overlay, d.retained, virtualSize),
    );
  }
  await step(ErrorCode.cannotRenameImage, `put the overlay in place of ${d.live}`, () =>
    fs.rename(d.overlay, d.live),
  );
}

/** The XML to restore with: the saved one, each disk now backed by its retained image. */
async function restoreXml(deps: NodeDeps, paths: RunPaths): Promise<string> {
  const saved = await deps.virsh.saveImageXml(paths.state.saved);
  const file = path.join(paths.layout.retainDir, '.restore.xml');
  await fs.writeFile(file, withBackingFiles(saved, new Map(paths.disks.map((d) => [d.target, d.retained]))), {
    mode: 0o600,
  });
  return file;
}

async function runsOnOverlays(deps: NodeDeps, vm: string, paths: RunPaths): Promise<boolean> {
  const sources = await deps.virsh.diskSources(vm);
  for (const d of paths.disks) {
    if (sources.get(d.target) !== d.live || !(await isOurOverlay(d.live, d.retained))) return false;
  }
  return true;
}

async function finishSnapshot(paths: RunPaths, journal: Journal): Promise<SnapshotResult> {
  if (journal.wasRunning) {
    await step(ErrorCode.stateFileToRetainFailed, 'move the state file to the retain directory', () =>
      moveFile(paths.state.saved, paths.state.retained),
    );
  } else if (!(await exists(paths.state.retained))) {
    await writeFileAtomic(paths.state.retained, PLACEHOLDER_STATE);
  }
  await fs.rm(path.join(paths.layout.retainDir, '.restore.xml'), { force: true });
  const done: Journal = {
    ...journal,
    phase: 'snapshotted',
    snapshotMs: journal.snapshotMs ?? Date.now() - journal.startedAt,
    downtimeMs:
      journal.downtimeMs ??
      (journal.wasRunning ? Date.now() - (journal.saveStartedAt ?? journal.startedAt) : 0),
  };
  await writeJournal(paths.layout.retainDir, done);
  return {
    wasRunning: journal.wasRunning,
    downtimeMs: done.downtimeMs ?? 0,
    snapshotMs: done.snapshotMs ?? 0,
  };
}

/**
 * snapshot: save the VM's state, move every disk into the retain directory, put a new
 * overlay backed by it in its place, and bring the VM back from its state. Re-run after a
 * crash at any point, it reads the journal, libvirt and the files, and continues.
 */
export async function snapshot(deps: NodeDeps, input: SnapshotInput): Promise<SnapshotResult> {
  const paths = resolveRun(deps, input);
  let journal = await readJournal(paths.layout.retainDir);
  if (journal?.phase === 'snapshotted' || journal?.phase === 'merged') {
    return {
      wasRunning: journal.wasRunning,
      downtimeMs: journal.downtimeMs ?? 0,
      snapshotMs: journal.snapshotMs ?? 0,
    };
  }
  if (!journal) journal = await prepare(deps, input, paths);
  heartbeat({ phase: 'prepared' });
  failpoint('snapshot-after-prepare');
  try {
    const state = await deps.virsh.state(input.vm);
    if (state === undefined)
      throw new BackupError(ErrorCode.cannotFindMachine, `VM ${input.vm} disappeared during the snapshot`);
    if (journal.wasRunning && state !== 'shut off' && (await runsOnOverlays(deps, input.vm, paths))) {
      return await finishSnapshot(paths, journal); // restored before a crash
    }
    let saveStart: number | undefined;
    if (journal.wasRunning && state !== 'shut off') {
      // --- downtime window starts: the VM stops running here ---
      saveStart = Date.now();
      await step(ErrorCode.cannotSaveState, 'save the VM state', () =>
        deps.virsh.save(input.vm, paths.state.saved),
      );
      failpoint('snapshot-after-save');
    } else if (journal.wasRunning && !(await exists(paths.state.saved))) {
      throw new BackupError(
        ErrorCode.cannotSaveState,
        `VM ${input.vm} is shut off but its saved state ${paths.state.saved} is missing`,
      );
    } else if (!journal.wasRunning && state !== 'shut off') {
      throw new BackupError(
        ErrorCode.wrongStateInformation,
        `VM ${input.vm} was started during its snapshot`,
      );
    }
    for (const d of paths.disks) await swapDisk(d);
    await syncDir(path.dirname(paths.disks[0]!.live));
    failpoint('snapshot-after-swap');
    if (journal.wasRunning) {
      const xml = await restoreXml(deps, paths);
      const paused = journal.wasPaused;
      await step(ErrorCode.cannotRestoreMachine, 'restore the VM from its state', () =>
        deps.virsh.restore(paths.state.saved, xml, paused),
      );
      // --- downtime window ends ---
      // After a crash inside the window the journal's earlier mark stands in (an overestimate).
      journal = {
        ...journal,
        downtimeMs: Date.now() - (saveStart ?? journal.saveStartedAt ?? journal.startedAt),
      };
      failpoint('snapshot-after-restore');
    }
  } catch (err) {
    if (err instanceof BackupError) {
      // A business failure inside the window: put the VM back on its original disks.
      await rollbackSnapshot(deps, input, paths).catch(() => undefined);
    }
    throw err;
  }
  return finishSnapshot(paths, journal);
}

/** Guest writes would have allocated clusters in the overlay itself. */
const overlayIsEmpty = mapHasNoData;

/**
 * Undoes a snapshot that did not finish: discards overlays that hold no guest data, moves
 * each retained image back and brings the VM back as it was. A VM that already runs on its
 * overlays keeps them (its new writes are there): the snapshot is finished instead.
 */
export async function rollbackSnapshot(
  deps: NodeDeps,
  input: VmRunInput,
  paths = resolveRun(deps, input),
): Promise<AbortSnapshotResult> {
  const journal = await readJournal(paths.layout.retainDir);
  if (journal?.phase === 'snapshotted' || journal?.phase === 'merged') return 'completed';
  const state = await deps.virsh.state(input.vm);
  if (
    journal &&
    state !== undefined &&
    state !== 'shut off' &&
    journal.wasRunning &&
    (await runsOnOverlays(deps, input.vm, paths))
  ) {
    await finishSnapshot(paths, journal);
    return 'completed';
  }
  // A VM that was off must still be off: if someone started it, its overlay may hold data.
  const active = state === 'running' || state === 'paused';
  if (active && journal && !journal.wasRunning) {
    throw new BackupError(
      ErrorCode.cannotMoveImageBack,
      `VM ${input.vm} was started during its snapshot; leaving it alone`,
    );
  }
  for (const d of paths.disks) {
    for (const candidate of [d.live, d.overlay]) {
      if (
        (await isOurOverlay(candidate, d.retained)) &&
        !(candidate === d.live && !(await exists(d.retained)))
      ) {
        if (!(await overlayIsEmpty(candidate))) {
          throw new BackupError(
            ErrorCode.cannotMoveImageBack,
            `${candidate} holds guest data; an operator must merge it`,
          );
        }
        await fs.unlink(candidate);
      }
    }
    if (!(await exists(d.live)) && (await exists(d.retained))) {
      await step(ErrorCode.cannotMoveImageBack, `move ${d.retained} back`, () =>
        fs.rename(d.retained, d.live),
      );
    }
    if (!(await exists(d.live)))
      throw new BackupError(ErrorCode.cannotMoveImageBack, `disk ${d.target}: ${d.live} is missing`);
  }
  if (journal?.wasRunning && (await deps.virsh.state(input.vm)) === 'shut off') {
    if (await exists(paths.state.saved)) {
      // The saved XML describes the original images, exactly as they are again now.
      await step(ErrorCode.cannotRestoreMachine, 'restore the VM from its state', async () => {
        const xml = path.join(paths.layout.retainDir, '.rollback.xml');
        await fs.writeFile(xml, await deps.virsh.saveImageXml(paths.state.saved), { mode: 0o600 });
        await deps.virsh.restore(paths.state.saved, xml, journal.wasPaused);
      });
    } else {
      await step(ErrorCode.cannotStart, 'start the VM', () => deps.virsh.start(input.vm));
    }
  }
  if (journal?.wasRunning) await fs.rm(paths.state.saved, { force: true });
  await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
  return 'rolled-back';
}
