import { executeChild, log, ParentClosePolicy, workflowInfo } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Timing } from '../config';
import { formatRunDate } from '../domain/names';
import { scheduleId, type PlanRef } from '../domain/schedules';
import { directory } from './activities';
import { backupVms } from './backup-vms';
import { summarizeFailure } from './failures';
import { NodeKey, VmNameKey } from './search-attributes';
import { partOutcome, story, withOutcome, type Story } from './story';

export interface NightlyBackupInput {
  plan: PlanRef;
  timing: Timing;
  /** Defaults to the time the schedule planned this run for. */
  runDate?: string | undefined;
}

export interface NightlyBackupResult {
  plan: PlanRef;
  runDate: string;
  backedUp: Array<{ vm: string; node: string; downtimeMs: number; deletedByRetention: string[] }>;
  skipped: Array<{ vm: string; reason: string }>;
  /** Backed up again although their last run failed: that run had changed nothing. */
  retried?: Array<{ vm: string; reason: string }> | undefined;
  /** Backed up as planned, but their newest backup so far had failed verification. */
  unproven?: Array<{ vm: string; reason: string }> | undefined;
  failed: Array<{ vm: string; node: string; reason: string; errorCode?: number | undefined }>;
}

const ScheduledStart = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/**
 * A plan's nightly run, started by its Temporal schedule: finds the VMs the plan covers,
 * skips excluded ones and those whose last backup needs an operator, then backs up each
 * node's VMs together (all snapshots of a node first) and reports every VM's outcome.
 */
export async function nightlyBackup(input: NightlyBackupInput): Promise<NightlyBackupResult> {
  const tale = story();
  return withOutcome(
    tale,
    () => nightlyBackupRun(input, tale),
    (r) => partOutcome(r.backedUp.length, r.backedUp.length + r.failed.length),
  );
}

async function nightlyBackupRun(input: NightlyBackupInput, tale: Story): Promise<NightlyBackupResult> {
  const planned = workflowInfo().typedSearchAttributes.get(ScheduledStart);
  const runDate = input.runDate ?? formatRunDate(planned ?? new Date());
  tale.runDate(runDate);
  tale.details(`Nightly backup of plan ${scheduleId(input.plan)}, run ${runDate}`);
  const selection = await directory.selectNightly(input.plan);
  const result: NightlyBackupResult = {
    plan: input.plan,
    runDate,
    backedUp: [],
    skipped: selection.skipped,
    ...(selection.retried?.length ? { retried: selection.retried } : {}),
    ...(selection.unproven?.length ? { unproven: selection.unproven } : {}),
    failed: [],
  };
  const nodes = Object.keys(selection.byNode).sort();
  const runs = await Promise.allSettled(
    nodes.map((node) => {
      const vms = selection.byNode[node]!;
      return executeChild(backupVms, {
        workflowId: `nightly/${scheduleId(input.plan)}/${runDate}/${node}`,
        args: [{ vms, runDate, timing: input.timing }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `Nightly backup of ${vms.join(', ')} on ${node}, run ${runDate}`,
        typedSearchAttributes: [
          { key: VmNameKey, value: vms },
          { key: NodeKey, value: [node] },
        ],
      });
    }),
  );
  runs.forEach((run, i) => {
    const node = nodes[i]!;
    if (run.status === 'rejected') {
      const f = summarizeFailure(run.reason);
      for (const vm of selection.byNode[node]!)
        result.failed.push({ vm, node, reason: f.message, errorCode: f.code });
      return;
    }
    for (const r of run.value.results) {
      if (r.outcome === 'backed-up') {
        result.backedUp.push({
          vm: r.vm,
          node,
          downtimeMs: r.downtimeMs,
          deletedByRetention: r.retention?.deleted ?? [],
        });
      } else {
        result.failed.push({
          vm: r.vm,
          node,
          reason: r.message,
          errorCode: r.outcome === 'failed' ? r.errorCode : undefined,
        });
      }
    }
  });
  log.info('nightly backup finished', {
    plan: scheduleId(input.plan),
    runDate,
    backedUp: result.backedUp.map((b) => `${b.vm} (downtime ${b.downtimeMs} ms)`),
    skipped: result.skipped.map((s) => `${s.vm}: ${s.reason}`),
    retried: (result.retried ?? []).map((s) => `${s.vm}: ${s.reason}`),
    unproven: (result.unproven ?? []).map((s) => `${s.vm}: ${s.reason}`),
    failed: result.failed.map((f) => `${f.vm}: ${f.reason}`),
  });
  return result;
}
