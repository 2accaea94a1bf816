import { setTimeout as sleep } from 'node:timers/promises';
import { BackupError, ErrorCode } from '../../domain/errors';
import { isInside } from '../../domain/paths';
import { imageInfo } from '../../hypervisor/qemu-img';
import { failpoint } from './failpoints';
import { readJournal, writeJournal } from './journal';
import { heartbeat, resolveRun, step, type NodeDeps, type RunPaths } from './context';
import type { MergeResult, VmRunInput } from './types';

async function dependsOnRetain(live: string, retainDir: string): Promise<boolean> {
  const backing = (await imageInfo(live)).fullBackingFilename;
  return !!backing && isInside(retainDir, backing);
}

/** The disks whose live image still reads from the retain directory. */
export async function disksDependingOnRetain(paths: RunPaths): Promise<string[]> {
  const out: string[] = [];
  for (const d of paths.disks) if (await dependsOnRetain(d.live, paths.layout.retainDir)) out.push(d.target);
  return out;
}

/**
 * merge: stream each retained image into the live overlay (block pull) so that no live
 * image depends on the retain directory any more. A shut-down VM is started paused for
 * it and stopped again afterwards. Re-run, it finds running jobs and waits for them.
 */
export async function merge(deps: NodeDeps, input: VmRunInput): Promise<MergeResult> {
  const started = Date.now();
  const paths = resolveRun(deps, input);
  let journal = await readJournal(paths.layout.retainDir);
  if (!journal || journal.phase === 'prepared') {
    throw new BackupError(
      ErrorCode.wrongStateInformation,
      `VM ${input.vm}: no finished snapshot for ${input.runDate} to merge`,
    );
  }
  const pending = await disksDependingOnRetain(paths);
  const stopAgain = async () => {
    if (journal?.mergeStartedVm && (await deps.virsh.state(input.vm)) === 'paused')
      await deps.virsh.destroy(input.vm);
    journal = { ...journal!, mergeStartedVm: false, phase: 'merged' };
    await writeJournal(paths.layout.retainDir, journal);
  };
  if (pending.length === 0) {
    await stopAgain();
    return { mergedDisks: [], mergeMs: Date.now() - started };
  }
  const state = await deps.virsh.state(input.vm);
  if (state === undefined)
    throw new BackupError(ErrorCode.cannotFindMachine, `VM ${input.vm} is not defined on this node`);
  if (state === 'shut off') {
    // Recorded first: after a crash only the journal tells that this paused VM is ours to stop.
    journal = { ...journal, mergeStartedVm: true };
    await writeJournal(paths.layout.retainDir, journal);
    await step(ErrorCode.cannotStart, `start ${input.vm} paused for the merge`, () =>
      deps.virsh.start(input.vm, true),
    );
  }
  failpoint('merge-before-pull');
  const progress: Record<string, string> = {};
  for (const target of pending) {
    if (!(await deps.virsh.blockJob(input.vm, target))) {
      await step(ErrorCode.mergeFailed, `block pull of ${target}`, () =>
        deps.virsh.startBlockPull(input.vm, target, input.plan.mergeBandwidth),
      );
    }
  }
  failpoint('merge-during-pull');
  const restarts = new Map<string, number>();
  for (;;) {
    let busy = false;
    for (const target of pending) {
      const job = await deps.virsh.blockJob(input.vm, target);
      const live = paths.disks.find((d) => d.target === target)!.live;
      if (job) {
        busy = true;
        progress[target] = `${job.cur}/${job.end}`;
      } else if (await dependsOnRetain(live, paths.layout.retainDir)) {
        // The job ended without removing the dependency (cancelled or failed): start it again.
        const n = (restarts.get(target) ?? 0) + 1;
        if (n > 3)
          throw new BackupError(
            ErrorCode.mergeFailed,
            `block pull of ${target} keeps ending without finishing`,
          );
        restarts.set(target, n);
        await step(ErrorCode.mergeFailed, `block pull of ${target}`, () =>
          deps.virsh.startBlockPull(input.vm, target, input.plan.mergeBandwidth),
        );
        busy = true;
      } else {
        progress[target] = 'done';
      }
    }
    heartbeat({ progress });
    if (!busy) break;
    await sleep(250);
  }
  const left = await disksDependingOnRetain(paths);
  if (left.length)
    throw new BackupError(
      ErrorCode.mergeFailed,
      `disks ${left.join(', ')} still depend on the retain directory`,
    );
  failpoint('merge-after-pull');
  await stopAgain();
  return { mergedDisks: pending, mergeMs: Date.now() - started };
}
