import { randomBytes } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, temporalConfig, timingFromEnv } from '../config';
import { assertRunDate, assertVmName, formatRunDate } from '../domain/names';
import type { BackupVmResult } from '../workflows/backup-vm';
import type { BackupVmsResult, VmOutcome } from '../workflows/backup-vms';
import { vmWorkflowId } from '../workflows/ids';
import { VmNameKey } from '../workflows/search-attributes';
import { failureMessage, uiLink } from './client';

export interface BackupCommand {
  vms: string[];
  wait: boolean;
  runDate?: string | undefined;
}

function describe(o: VmOutcome): string {
  if (o.outcome === 'backed-up') {
    return `${o.vm}: backed up on ${o.node} to ${o.backupDir} (downtime ${(o.downtimeMs / 1000).toFixed(2)} s)`;
  }
  if (o.outcome === 'refused') return `${o.vm}: refused: ${o.message}`;
  return `${o.vm}: FAILED (error ${o.errorCode}): ${o.message}`;
}

/** Starts the backup of one VM or of several together; with `wait`, prints each VM's outcome. */
export async function runBackup(
  client: Client,
  cmd: BackupCommand,
  out: (line: string) => void,
): Promise<number> {
  cmd.vms.forEach((vm) => assertVmName(vm));
  if (cmd.runDate !== undefined) assertRunDate(cmd.runDate);
  const temporal = temporalConfig();
  const timing = timingFromEnv();
  const runDate = cmd.runDate ?? formatRunDate(new Date());
  const single = cmd.vms.length === 1;
  const workflowId = single
    ? vmWorkflowId(cmd.vms[0]!)
    : `backup-vms/${runDate}-${randomBytes(3).toString('hex')}`;
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
      out(
        `${cmd.vms[0]}: refused: a backup or restore of ${cmd.vms[0]} is already running (workflow ${workflowId})`,
      );
      return 1;
    }
    throw err;
  }
  out(`started ${workflowId} (run ${runDate})`);
  const link = uiLink(temporal, workflowId, handle.firstExecutionRunId);
  if (link) out(`Temporal UI: ${link}`);
  if (!cmd.wait) return 0;
  try {
    const result = (await handle.result()) as BackupVmResult | BackupVmsResult;
    const outcomes: VmOutcome[] =
      'results' in result ? result.results : [{ outcome: 'backed-up', ...result }];
    outcomes.forEach((o) => out(describe(o)));
    return outcomes.every((o) => o.outcome === 'backed-up') ? 0 : 1;
  } catch (err) {
    const f = failureMessage(err);
    out(`${cmd.vms[0]}: FAILED (error ${f.code}): ${f.message}`);
    return 1;
  }
}
