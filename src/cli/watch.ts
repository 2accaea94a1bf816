import type { Client } from '@temporalio/client';
import { assertVmName } from '../domain/names';
import type { BackupVmResult } from '../workflows/backup-vm';
import type { BackupVmsResult } from '../workflows/backup-vms';
import { vmWorkflowId } from '../workflows/ids';
import type { RestoreVmResult } from '../workflows/restore-vm';
import { VmNameKey } from '../workflows/search-attributes';
import { describeOutcome } from './backup';
import { failureMessage } from './client';
import { followRuns, progressFor } from './follow';
import type { ProgressRenderer } from './progress-render';
import { describeRun, type RunTarget } from './progress-source';

/**
 * `vmbackup watch <vm | workflow ID>`: attaches to the VM's backup or restore that is going
 * (workflow `vm/<vm>`), or to a multi-VM run by its workflow ID, and shows its progress until
 * it ends. Exit 0 when it ended well, 1 when it failed (or a restore was aborted), 2 when no
 * run is going.
 */
export async function runWatch(
  client: Client,
  cmd: { target: string; progress?: true | ProgressRenderer | undefined; pollMs?: number | undefined },
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  const isWorkflowId = cmd.target.includes('/');
  if (!isWorkflowId) assertVmName(cmd.target);
  const workflowId = isWorkflowId ? cmd.target : vmWorkflowId(cmd.target);
  const d = await describeRun(client, workflowId);
  if (!d || d.status.name !== 'RUNNING') {
    err(
      d
        ? `no run of ${cmd.target} is going: the last one (${d.type}) ended ${d.status.name.toLowerCase()}${d.closeTime ? ` at ${d.closeTime.toISOString()}` : ''}`
        : `no run of ${cmd.target} is going (no workflow ${workflowId})`,
    );
    return 2;
  }
  const multi = d.type === 'backupVms';
  const vms = multi
    ? (d.typedSearchAttributes.get(VmNameKey) ?? [])
    : [isWorkflowId ? workflowId : cmd.target];
  const targets: RunTarget[] = multi
    ? vms.map((vm) => ({ vm, workflowId: vmWorkflowId(vm), parentWorkflowId: workflowId }))
    : [{ vm: vms[0]!, workflowId, runId: d.runId }];
  err(`watching ${d.type} ${workflowId} (run ${d.runId}), started ${d.startTime.toISOString()}`);
  const result = client.workflow.getHandle(workflowId, d.runId).result();
  await followRuns(client, targets, {
    until: result,
    renderer: progressFor(cmd.progress, vms)!,
    pollMs: cmd.pollMs,
  });
  try {
    const r = (await result) as BackupVmResult | BackupVmsResult | RestoreVmResult | undefined;
    if (d.type === 'backupVms') {
      const outcomes = (r as BackupVmsResult).results;
      outcomes.forEach((o) => out(describeOutcome(o)));
      return outcomes.every((o) => o.outcome === 'backed-up') ? 0 : 1;
    }
    if (d.type === 'backupVm') {
      out(describeOutcome({ outcome: 'backed-up', ...(r as BackupVmResult) }));
      return 0;
    }
    if (d.type === 'restoreVm') {
      const rr = r as RestoreVmResult;
      out(
        `${cmd.target}: restore ${rr.outcome}${rr.backup ? ` from ${rr.backup}` : ''}${rr.state ? ` (VM ${rr.state})` : ''}${rr.reason ? `: ${rr.reason}` : ''}`,
      );
      return rr.outcome === 'restored' ? 0 : 1;
    }
    out(`${cmd.target}: ${d.type} finished`);
    return 0;
  } catch (e) {
    const f = failureMessage(e);
    out(`${cmd.target}: ${d.type} FAILED (error ${f.code}): ${f.message}`);
    return 1;
  }
}
