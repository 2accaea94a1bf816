import { BackupError, ErrorCode } from '../../domain/errors';
import { decideMerge, type MergeAction, type MergeWorld } from '../../domain/steps/merge';
import { drive } from './drive';
import { liveMerge } from './live';
import { readJournal, writeJournal } from './journal';
import { backedFrom, observeDomain } from './observe';
import { resolveRunChecked, step, type NodeDeps, type RunPaths } from './context';
import type { MergeResult, VmRunInput } from './types';

/** The disks whose live image still reads from the retain directory. */
export async function disksDependingOnRetain(paths: RunPaths): Promise<string[]> {
  const out: string[] = [];
  for (const d of paths.disks) if (await backedFrom(d.live, paths.layout.retainDir)) out.push(d.target);
  return out;
}

async function observeMerge(
  deps: NodeDeps,
  input: VmRunInput,
  paths: RunPaths,
  pulls: Map<string, number>,
): Promise<MergeWorld> {
  const journal = await readJournal(paths.layout.retainDir);
  const domain = await observeDomain(deps.virsh, input.vm);
  const active = domain.state === 'running' || domain.state === 'paused';
  const disks = [];
  for (const d of paths.disks) {
    disks.push({
      target: d.target,
      dependsOnRetain: await backedFrom(d.live, paths.layout.retainDir),
      job: active ? await deps.virsh.blockJob(input.vm, d.target) : undefined,
      pulls: pulls.get(d.target) ?? 0,
    });
  }
  return {
    vm: input.vm,
    journal: journal && { phase: journal.phase, mergeStartedVm: !!journal.mergeStartedVm },
    domain,
    disks,
  };
}

async function mergeAct(
  deps: NodeDeps,
  input: VmRunInput,
  paths: RunPaths,
  pulls: Map<string, number>,
  a: MergeAction,
): Promise<void> {
  const journal = await readJournal(paths.layout.retainDir);
  if (!journal) throw new BackupError(ErrorCode.wrongStateInformation, `the journal of ${input.vm} is gone`);
  switch (a.kind) {
    case 'start-paused':
      // Recorded first: after a crash only the journal tells that this paused VM is ours to stop.
      await writeJournal(paths.layout.retainDir, { ...journal, mergeStartedVm: true });
      return step(ErrorCode.cannotStart, `start ${input.vm} paused for the merge`, () =>
        deps.virsh.start(input.vm, true),
      );
    case 'start-pull':
      await step(ErrorCode.mergeFailed, `block pull of ${a.target}`, () =>
        deps.virsh.startBlockPull(input.vm, a.target!, input.plan.mergeBandwidth),
      );
      // Counted once libvirt took it: a blockpull libvirt did not answer is no pull that ended.
      pulls.set(a.target!, (pulls.get(a.target!) ?? 0) + 1);
      return;
    case 'stop-vm':
      return step(ErrorCode.mergeFailed, `stop ${input.vm} again after the merge`, () =>
        deps.virsh.destroy(input.vm),
      );
    case 'finish':
      return writeJournal(paths.layout.retainDir, { ...journal, phase: 'merged', mergeStartedVm: false });
  }
}

/**
 * merge: stream each retained image into the live overlay (block pull) so that no live
 * image depends on the retain directory any more. A shut-down VM is started paused for
 * it and stopped again afterwards. Re-run, it finds running jobs and waits for them.
 */
export async function merge(deps: NodeDeps, input: VmRunInput): Promise<MergeResult> {
  const started = Date.now();
  const paths = await resolveRunChecked(deps, input);
  const journal = await readJournal(paths.layout.retainDir);
  if (journal?.mode === 'live') {
    const onOverlay = journal.phase === 'merged' ? [] : paths.disks.map((d) => d.target);
    await liveMerge(deps, input, paths);
    return { mergedDisks: onOverlay, mergeMs: Date.now() - started };
  }
  const pending = await disksDependingOnRetain(paths);
  const pulls = new Map<string, number>();
  await drive({
    step: 'merge',
    vm: input.vm,
    observe: () => observeMerge(deps, input, paths, pulls),
    decide: decideMerge,
    act: (a) => mergeAct(deps, input, paths, pulls, a),
    waitMs: 250,
  });
  return { mergedDisks: pending, mergeMs: Date.now() - started };
}
