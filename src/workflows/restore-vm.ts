import { condition, patched, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { ConfigTexts } from '../activities/directory';
import type { VmRunInput } from '../activities/node/types';
import type { Timing } from '../config';
import { rejectDecision } from '../domain/conflicts';
import { ErrorCode } from '../domain/errors';
import { assertRunDate, assertVmName } from '../domain/names';
import type { LeafUpdate } from '../domain/protocol';
import { directory, nodeActivities } from './activities';
import { backupFailure, summarizeFailure } from './failures';
import {
  abortSignal,
  abortUpdate,
  decideSignal,
  decideUpdate,
  restoreStatus,
  type RestoreDecision,
  type RestoreStage,
  type RestoreStatus,
} from './messages';
import { NodeKey } from './search-attributes';
import { story, withOutcome, type Story } from './story';

export interface RestoreVmInput {
  vm: string;
  /** The backup's date (`YYYYMMDDThhmmssZ`); default: the latest finished one. */
  backup?: string | undefined;
  timing: Timing;
  /** Without a decision within this time the restore aborts by itself. */
  decisionTimeoutSeconds?: number | undefined;
  /** Graceful shutdown limit before the VM is stopped by force. */
  shutdownSeconds?: number | undefined;
}

export interface RestoreVmResult {
  vm: string;
  backup: string;
  outcome: 'restored' | 'aborted';
  reason?: string | undefined;
  /** libvirt state of the VM at the end. */
  state?: string | undefined;
  /** Live images kept aside because the VM was left off: remove them once it is known good. */
  keptAside?: string[] | undefined;
}

const go = (mode: string): LeafUpdate => ({ mode, state: '0' });
const done = (mode: string): LeafUpdate => ({ mode, state: 'now', returnValue: 0 });

/**
 * Restores a VM from one of its backups: the small files come back first and the
 * conflicts between the backed-up and the live configuration are shown (query
 * `restoreStatus`); the workflow waits for the user's decision (update or signal
 * `decide`) or abort (`abort`). Only after the decision do the large files come back and
 * the VM is restored, from its saved state with the resolved XML.
 */
export async function restoreVm(input: RestoreVmInput): Promise<RestoreVmResult> {
  const tale = story();
  return withOutcome(
    tale,
    () => restoreVmRun(input, tale),
    (r) => r.outcome,
  );
}

async function restoreVmRun(input: RestoreVmInput, tale: Story): Promise<RestoreVmResult> {
  try {
    assertVmName(input.vm);
    if (input.backup !== undefined) assertRunDate(input.backup);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.cannotFindMachine);
  }
  const vm = input.vm;
  const status: RestoreStatus = { vm, stage: 'loading', conflicts: [], inconsistencies: [] };
  const stage = (st: RestoreStage) => {
    status.stage = st;
    const from = status.backup ? ` from backup ${status.backup}` : '';
    tale.details(`Restore of ${vm}${from}${status.node ? ` on ${status.node}` : ''}: ${st}`);
  };
  let decision: RestoreDecision | undefined;
  let abortReason: string | undefined;

  const whyNotDecide = (d: unknown): string | undefined => {
    if (decision) return 'a decision was already taken';
    if (abortReason !== undefined) return 'the restore was aborted';
    if (status.stage !== 'awaiting-decision')
      return `the restore is ${status.stage}, not waiting for a decision`;
    return rejectDecision(status.conflicts, d, status.withState ?? true);
  };
  const whyNotAbort = (): string | undefined => {
    if (decision) return 'the decision was taken: there is no way back, the restore cannot be aborted';
    if (['finished', 'aborted', 'failed'].includes(status.stage))
      return `the restore is already ${status.stage}`;
    return undefined;
  };
  const accept = (d: RestoreDecision) => {
    decision = { ...d };
    status.decision = decision;
  };
  setHandler(restoreStatus, () => status);
  setHandler(
    decideUpdate,
    (d) => {
      accept(d);
      return status;
    },
    {
      validator: (d) => {
        const why = whyNotDecide(d);
        if (why) throw new Error(why);
      },
    },
  );
  setHandler(decideSignal, (d) => {
    const why = whyNotDecide(d);
    if (why) status.lastRejection = why;
    else accept(d);
  });
  setHandler(
    abortUpdate,
    (a) => {
      abortReason = a?.reason ?? 'aborted by the user';
      return status;
    },
    {
      validator: (_a) => {
        const why = whyNotAbort();
        if (why) throw new Error(why);
      },
    },
  );
  setHandler(abortSignal, (a) => {
    const why = whyNotAbort();
    if (why) status.lastRejection = why;
    else abortReason = a?.reason ?? 'aborted by the user';
  });

  let target;
  try {
    target = await directory.loadRestoreTarget(vm, input.backup);
  } catch (err) {
    stage('failed');
    const f = summarizeFailure(err);
    status.message = f.message;
    throw backupFailure(`cannot restore ${vm}: ${f.message}`, f.code);
  }
  const backup = target.backupDate;
  status.backup = backup;
  status.node = target.vm.node;
  tale.runDate(backup);
  upsertSearchAttributes([{ key: NodeKey, value: [target.vm.node] }]);
  const { probe, work } = nodeActivities(target.vm.node, input.timing);
  const run: VmRunInput = { vm, runDate: backup, disks: target.vm.disks, plan: target.plan };
  const leaf = (u: LeafUpdate) => directory.updateRun(vm, backup, u);
  const fail = async (mode: string, err: unknown, clean: boolean): Promise<never> => {
    const f = summarizeFailure(err);
    stage('failed');
    status.message = f.message;
    if (clean) await work.cleanRestore(run);
    await leaf({ mode, state: '0', returnValue: f.code });
    throw backupFailure(`restore of ${vm} from ${backup} failed: ${f.message}`, f.code);
  };

  // --- unretain small files, conflicts ---
  stage('unretaining-small-files');
  await leaf(go('unretainSmallFiles'));
  await leaf(go('unretainingSmallFiles'));
  let texts: ConfigTexts;
  let small;
  try {
    small = await probe.unretainSmallFiles(run);
    const liveLdif = await directory.exportLiveEntry(vm);
    texts = {
      vm,
      backupLdif: small.backupLdif,
      backupXml: small.backupXml,
      liveLdif,
      liveXml: small.liveXml,
    };
    const found = await directory.computeConflicts(texts);
    status.conflicts = found.conflicts;
    status.inconsistencies = found.inconsistencies;
  } catch (err) {
    return fail('unretainingSmallFiles', err, true);
  }
  status.withState = !small.stateless && !target.plan.restoreWithoutState;
  await leaf(done('unretainedSmallFiles'));

  // --- the user's decision ---
  const timeout = input.decisionTimeoutSeconds ?? 24 * 3600;
  stage('awaiting-decision');
  status.decisionDeadline = new Date(new Date().getTime() + timeout * 1000).toISOString(); // workflow time: deterministic
  const decided = await condition(() => decision !== undefined || abortReason !== undefined, `${timeout}s`);
  if (!decided) abortReason = `no decision within ${timeout} s`;
  if (abortReason !== undefined || !decision) {
    await work.cleanRestore(run);
    // A cancelled restore ends as finished with state 0.
    await leaf({ mode: 'finished', state: '0', returnValue: 0 });
    stage('aborted');
    status.message = abortReason;
    return { vm, backup, outcome: 'aborted', reason: abortReason };
  }

  // --- no way back from here: large files, directory entry, machine ---
  const chosen = decision;
  const largeRun: VmRunInput = { ...run, disks: small.backupDisks };
  stage('unretaining-large-files');
  await leaf(go('unretainLargeFiles'));
  await leaf(go('unretainingLargeFiles'));
  try {
    await work.unretainLargeFiles(largeRun);
  } catch (err) {
    return fail('unretainingLargeFiles', err, true);
  }
  await leaf(done('unretainedLargeFiles'));

  stage('restoring');
  await leaf(go('restore'));
  await leaf(go('restoring'));
  let state: string;
  let keptAside: string[] | undefined;
  try {
    const resolved = await directory.resolveRestore(texts, status.conflicts, chosen);
    await directory.writeVmEntries(vm, resolved.entries);
    const restored = await work.restoreMachine({
      ...largeRun,
      xml: resolved.xml,
      withState: status.withState,
      startAfter: target.plan.forceStart || (!small.stateless && target.plan.restoreWithoutState),
      shutdownSeconds: input.shutdownSeconds ?? 60,
    });
    state = restored.state;
    keptAside = restored.keptAside;
  } catch (err) {
    return fail('restoring', err, false);
  }
  // The node keeps a marker of the finished restore until the workflow has its result.
  if (patched('forget-restore-marker')) await work.cleanRestore(run);
  await leaf(done('restored'));
  await leaf({ mode: 'finished', state: 'now', returnValue: 0 });
  stage('finished');
  return { vm, backup, outcome: 'restored', state, ...(keptAside ? { keptAside } : {}) };
}
