import { setTimeout as sleep } from 'node:timers/promises';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { CONTROL_TASK_QUEUE, temporalConfig, timingFromEnv } from '../config';
import { assertRunDate, assertVmName } from '../domain/names';
import { vmWorkflowId } from '../workflows/ids';
import {
  abortUpdate,
  decideUpdate,
  restoreStatus,
  type RestoreDecision,
  type RestoreStatus,
} from '../workflows/messages';
import type { RestoreVmResult } from '../workflows/restore-vm';
import { VmNameKey } from '../workflows/search-attributes';
import { uiLink } from './client';

type Out = (line: string) => void;

function cell(v: string | null, width: number): string {
  const s = v === null ? '(none)' : v;
  return (s.length > width ? `${s.slice(0, width - 1)}…` : s).padEnd(width);
}

/** The conflicts as a table an operator can read, one line per attribute or element. */
export function conflictTable(status: RestoreStatus): string[] {
  const lines = [`restore of ${status.vm} from backup ${status.backup ?? '?'}: ${status.stage}`];
  if (status.withState !== undefined) {
    lines.push(
      status.withState
        ? 'the VM comes back from its saved state'
        : 'the VM is defined from the XML (no saved state)',
    );
  }
  if (status.conflicts.length === 0) lines.push('no conflicts between the backup and the live configuration');
  else {
    lines.push(`${'id'.padEnd(44)} ${'backup'.padEnd(28)} ${'live'.padEnd(28)} note`);
    for (const c of status.conflicts) {
      const notes = [
        c.linkedTo ? `same as ${c.linkedTo}` : '',
        c.fixedByState && status.withState ? 'backup only (saved state)' : '',
      ]
        .filter(Boolean)
        .join('; ');
      lines.push(`${cell(c.id, 44)} ${cell(c.backup, 28)} ${cell(c.live, 28)} ${notes}`);
    }
  }
  for (const i of status.inconsistencies) {
    lines.push(
      `warning: in the ${i.config} configuration ${i.what} disagree: directory ${i.directory ?? '(none)'}, XML ${i.xml ?? '(none)'}`,
    );
  }
  if (status.decision) lines.push(`decision: ${JSON.stringify(status.decision)}`);
  if (status.lastRejection) lines.push(`last refused request: ${status.lastRejection}`);
  if (status.message) lines.push(status.message);
  return lines;
}

export async function startRestore(
  client: Client,
  cmd: { vm: string; backup?: string | undefined; decisionTimeoutSeconds?: number | undefined },
  out: Out,
): Promise<number> {
  assertVmName(cmd.vm);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  const workflowId = vmWorkflowId(cmd.vm);
  let handle;
  try {
    handle = await client.workflow.start('restoreVm', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId,
      args: [
        {
          vm: cmd.vm,
          backup: cmd.backup,
          timing: timingFromEnv(),
          decisionTimeoutSeconds: cmd.decisionTimeoutSeconds,
        },
      ],
      typedSearchAttributes: [{ key: VmNameKey, value: [cmd.vm] }],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      out(`${cmd.vm}: refused: a backup or restore of ${cmd.vm} is already running (workflow ${workflowId})`);
      return 1;
    }
    throw err;
  }
  const link = uiLink(temporalConfig(), workflowId, handle.firstExecutionRunId);
  if (link) out(`Temporal UI: ${link}`);
  for (;;) {
    const status = await handle.query(restoreStatus);
    if (status.stage === 'awaiting-decision') {
      conflictTable(status).forEach(out);
      out(
        `decide with: vmbackup restore decide ${cmd.vm} --all-backup | --all-live | --take-backup <ids> --keep-live <ids>`,
      );
      out(`or abort with: vmbackup restore abort ${cmd.vm}`);
      return 0;
    }
    if (['failed', 'aborted', 'finished'].includes(status.stage)) {
      conflictTable(status).forEach(out);
      return status.stage === 'failed' ? 1 : 0;
    }
    await sleep(500);
  }
}

function ids(list: string | undefined): string[] {
  return list
    ? list
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

/** Builds the decision from the CLI's options; conflicts not named take the `--all-*` side. */
export function buildDecision(
  status: RestoreStatus,
  opts: {
    takeBackup?: string | undefined;
    keepLive?: string | undefined;
    allBackup?: boolean | undefined;
    allLive?: boolean | undefined;
  },
): RestoreDecision {
  const decision: RestoreDecision = {};
  const fallback = opts.allBackup ? 'backup' : opts.allLive ? 'live' : undefined;
  if (fallback) for (const c of status.conflicts) decision[c.id] = fallback;
  for (const id of ids(opts.takeBackup)) decision[id] = 'backup';
  for (const id of ids(opts.keepLive)) decision[id] = 'live';
  return decision;
}

export async function decideRestore(
  client: Client,
  cmd: {
    vm: string;
    wait: boolean;
    takeBackup?: string | undefined;
    keepLive?: string | undefined;
    allBackup?: boolean | undefined;
    allLive?: boolean | undefined;
  },
  out: Out,
): Promise<number> {
  assertVmName(cmd.vm);
  if (cmd.allBackup && cmd.allLive) throw new Error('--all-backup and --all-live exclude each other');
  const handle = client.workflow.getHandle(vmWorkflowId(cmd.vm));
  const status = await handle.query(restoreStatus);
  const decision = buildDecision(status, cmd);
  try {
    await handle.executeUpdate(decideUpdate, { args: [decision] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      out(`decision refused: ${err.cause?.message ?? err.message}`);
      return 1;
    }
    throw err;
  }
  out(`decision accepted: ${JSON.stringify(decision)}`);
  if (!cmd.wait) return 0;
  try {
    const result = (await handle.result()) as RestoreVmResult;
    out(`${cmd.vm}: ${result.outcome} from ${result.backup}${result.state ? ` (VM ${result.state})` : ''}`);
    return result.outcome === 'restored' ? 0 : 1;
  } catch (err) {
    out(`${cmd.vm}: restore FAILED: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
    return 1;
  }
}

export async function abortRestore(
  client: Client,
  cmd: { vm: string; reason?: string | undefined },
  out: Out,
): Promise<number> {
  assertVmName(cmd.vm);
  const handle = client.workflow.getHandle(vmWorkflowId(cmd.vm));
  try {
    await handle.executeUpdate(abortUpdate, { args: [{ reason: cmd.reason }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      out(`abort refused: ${err.cause?.message ?? err.message}`);
      return 1;
    }
    throw err;
  }
  const result = (await handle.result()) as RestoreVmResult;
  out(`${cmd.vm}: restore ${result.outcome}${result.reason ? `: ${result.reason}` : ''}`);
  return 0;
}

export async function showRestore(client: Client, vm: string, out: Out): Promise<number> {
  assertVmName(vm);
  conflictTable(await client.workflow.getHandle(vmWorkflowId(vm)).query(restoreStatus)).forEach(out);
  return 0;
}
