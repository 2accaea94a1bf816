import { randomBytes } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, temporalConfig, timingFromEnv } from '../config';
import { assertRunDate, assertVmName, formatRunDate } from '../domain/names';
import type { BackupVmResult } from '../workflows/backup-vm';
import type { BackupVmsResult, VmOutcome } from '../workflows/backup-vms';
import { vmWorkflowId } from '../workflows/ids';
import { VmNameKey } from '../workflows/search-attributes';
import { failureMessage, uiLink } from './client';
import { orNull, report, toIo, type Io } from './io';
import type { ProgressRenderer } from './progress-render';
import type { RunTarget } from './progress-source';
import { followRuns, progressFor } from './follow';

export interface BackupCommand {
  vms: string[];
  wait: boolean;
  runDate?: string | undefined;
  json?: boolean | undefined;
  /** Live progress while waiting (default on); a renderer replaces the stderr one (tests). */
  progress?: boolean | ProgressRenderer | undefined;
}

/** One VM's outcome as a line. */
export function describeOutcome(o: VmOutcome): string {
  if (o.outcome === 'backed-up') {
    return `${o.vm}: backed up on ${o.node} to ${o.backupDir} (downtime ${(o.downtimeMs / 1000).toFixed(2)} s)`;
  }
  if (o.outcome === 'refused') return `${o.vm}: refused: ${o.message}`;
  return `${o.vm}: FAILED (error ${o.errorCode}): ${o.message}`;
}

/** One VM's outcome in the JSON output (docs/json.md): every field present, null when it has none. */
export function outcomeJson(o: VmOutcome) {
  const ok = o.outcome === 'backed-up';
  return {
    vm: o.vm,
    outcome: o.outcome,
    node: ok ? o.node : null,
    runDate: ok ? o.runDate : null,
    backupDir: ok ? o.backupDir : null,
    files: ok ? o.files : null,
    mode: ok ? orNull(o.mode) : null,
    fallback: ok ? orNull(o.fallback) : null,
    downtimeMs: ok ? o.downtimeMs : null,
    snapshotMs: ok ? o.snapshotMs : null,
    wasRunning: ok ? o.wasRunning : null,
    retentionDeleted: ok ? orNull(o.retention?.deleted) : null,
    retentionError: ok ? orNull(o.retention?.error) : null,
    errorCode: o.outcome === 'failed' ? o.errorCode : null,
    message: ok ? null : o.message,
  };
}

/**
 * Starts the backup of one VM or of several together; with `wait`, shows each VM's progress
 * (stderr) and prints each VM's outcome.
 */
export async function runBackup(
  client: Client,
  cmd: BackupCommand,
  output: Io | ((line: string) => void),
): Promise<number> {
  cmd.vms.forEach((vm) => assertVmName(vm));
  if (cmd.runDate !== undefined) assertRunDate(cmd.runDate);
  const r = report(toIo(output), cmd.json);
  const temporal = temporalConfig();
  const timing = timingFromEnv();
  const runDate = cmd.runDate ?? formatRunDate(new Date());
  const single = cmd.vms.length === 1;
  const workflowId = single
    ? vmWorkflowId(cmd.vms[0]!)
    : `backup-vms/${runDate}-${randomBytes(3).toString('hex')}`;
  const doc = {
    workflowId,
    runId: null as string | null,
    runDate,
    vms: cmd.vms,
    uiUrl: null as string | null,
  };
  let handle;
  try {
    handle = single
      ? await client.workflow.start('backupVm', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId,
          args: [{ vm: cmd.vms[0]!, runDate, timing }],
          typedSearchAttributes: [{ key: VmNameKey, value: cmd.vms }],
        })
      : await client.workflow.start('backupVms', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId,
          args: [{ vms: cmd.vms, runDate, timing }],
          typedSearchAttributes: [{ key: VmNameKey, value: cmd.vms }],
        });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const message = `a backup or restore of ${cmd.vms[0]} is already running (workflow ${workflowId})`;
      r.text(`${cmd.vms[0]}: refused: ${message}`);
      r.result({ ...doc, started: false, ok: false, refused: message, results: null });
      return 1;
    }
    throw err;
  }
  doc.runId = handle.firstExecutionRunId;
  doc.uiUrl = orNull(uiLink(temporal, workflowId, handle.firstExecutionRunId));
  r.info(`started ${workflowId} (run ${runDate})`);
  if (doc.uiUrl) r.info(`Temporal UI: ${doc.uiUrl}`);
  if (!cmd.wait) {
    r.result({ ...doc, started: true, ok: true, refused: null, results: null });
    return 0;
  }
  const result = handle.result() as Promise<BackupVmResult | BackupVmsResult>;
  // A caller passing a line printer (the demo) gets no progress unless it asks for it.
  const renderer = progressFor(cmd.progress ?? typeof output !== 'function', cmd.vms);
  if (renderer) {
    const targets: RunTarget[] = single
      ? [{ vm: cmd.vms[0]!, workflowId, runId: handle.firstExecutionRunId }]
      : cmd.vms.map((vm) => ({ vm, workflowId: vmWorkflowId(vm), parentWorkflowId: workflowId }));
    await followRuns(client, targets, { until: result, renderer });
  }
  let outcomes: VmOutcome[];
  try {
    const value = await result;
    outcomes = 'results' in value ? value.results : [{ outcome: 'backed-up', ...value }];
  } catch (err) {
    const f = failureMessage(err);
    r.text(`${cmd.vms[0]}: FAILED (error ${f.code}): ${f.message}`);
    const failed: VmOutcome[] = cmd.vms.map((vm) => ({
      vm,
      outcome: 'failed',
      errorCode: f.code,
      message: f.message,
    }));
    r.result({ ...doc, started: true, ok: false, refused: null, results: failed.map(outcomeJson) });
    return 1;
  }
  outcomes.forEach((o) => r.text(describeOutcome(o)));
  const ok = outcomes.every((o) => o.outcome === 'backed-up');
  r.result({ ...doc, started: true, ok, refused: null, results: outcomes.map(outcomeJson) });
  return ok ? 0 : 1;
}
