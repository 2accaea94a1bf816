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
import { failureMessage, uiLink } from './client';
import { followRuns, progressFor } from './follow';
import { orNull, report, type Io } from './io';
import type { ProgressRenderer } from './progress-render';

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

/** A restore's status in the JSON output (docs/json.md): every field present, null when it has none. */
export function restoreStatusJson(s: RestoreStatus) {
  return {
    vm: s.vm,
    backup: orNull(s.backup),
    node: orNull(s.node),
    stage: s.stage,
    withState: orNull(s.withState),
    conflicts: s.conflicts.map((c) => ({
      id: c.id,
      source: c.source,
      what: c.what,
      backup: c.backup,
      live: c.live,
      linkedTo: orNull(c.linkedTo),
      fixedByState: orNull(c.fixedByState),
      entryOnlyIn: orNull(c.entryOnlyIn),
    })),
    inconsistencies: s.inconsistencies.map((i) => ({
      config: i.config,
      what: i.what,
      directory: i.directory,
      xml: i.xml,
    })),
    decision: orNull(s.decision),
    lastRejection: orNull(s.lastRejection),
    decisionDeadline: orNull(s.decisionDeadline),
    message: orNull(s.message),
  };
}

/** A restore's end in the JSON output. */
export function restoreResultJson(r: RestoreVmResult) {
  return {
    vm: r.vm,
    backup: r.backup,
    outcome: r.outcome,
    reason: orNull(r.reason),
    state: orNull(r.state),
    keptAside: orNull(r.keptAside),
  };
}

export async function startRestore(
  client: Client,
  cmd: {
    vm: string;
    backup?: string | undefined;
    decisionTimeoutSeconds?: number | undefined;
    json?: boolean | undefined;
  },
  io: Io,
): Promise<number> {
  assertVmName(cmd.vm);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  const rep = report(io, cmd.json);
  const out = rep.text;
  const workflowId = vmWorkflowId(cmd.vm);
  const doc = { vm: cmd.vm, workflowId, runId: null as string | null, uiUrl: null as string | null };
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
      const message = `a backup or restore of ${cmd.vm} is already running (workflow ${workflowId})`;
      out(`${cmd.vm}: refused: ${message}`);
      rep.result({ ...doc, started: false, refused: message, status: null });
      return 1;
    }
    throw err;
  }
  doc.runId = handle.firstExecutionRunId;
  doc.uiUrl = orNull(uiLink(temporalConfig(), workflowId, handle.firstExecutionRunId));
  if (doc.uiUrl) rep.info(`Temporal UI: ${doc.uiUrl}`);
  for (;;) {
    const status = await handle.query(restoreStatus);
    const done = ['failed', 'aborted', 'finished'].includes(status.stage);
    if (status.stage === 'awaiting-decision' || done) {
      conflictTable(status).forEach(out);
      if (!done) {
        out(
          `decide with: vmbackup restore decide ${cmd.vm} --all-backup | --all-live | --take-backup <ids> --keep-live <ids>`,
        );
        out(`or abort with: vmbackup restore abort ${cmd.vm}`);
      }
      rep.result({ ...doc, started: true, refused: null, status: restoreStatusJson(status) });
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
    json?: boolean | undefined;
    /** Live progress while waiting (default on); a renderer replaces the stderr one (tests). */
    progress?: boolean | ProgressRenderer | undefined;
  },
  io: Io,
): Promise<number> {
  assertVmName(cmd.vm);
  if (cmd.allBackup && cmd.allLive) throw new Error('--all-backup and --all-live exclude each other');
  const rep = report(io, cmd.json);
  const out = rep.text;
  const workflowId = vmWorkflowId(cmd.vm);
  const described = await client.workflow.getHandle(workflowId).describe();
  // The run that was asked, also for --wait: a later run under the same ID is not this restore's end.
  const handle = client.workflow.getHandle(workflowId, described.runId);
  const decision = buildDecision(await handle.query(restoreStatus), cmd);
  const doc = { vm: cmd.vm, decision };
  let status: RestoreStatus;
  try {
    status = await handle.executeUpdate(decideUpdate, { args: [decision] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause?.message ?? err.message;
      out(`decision refused: ${why}`);
      rep.result({ ...doc, accepted: false, refused: why, status: null, result: null, error: null });
      return 1;
    }
    throw err;
  }
  out(`decision accepted: ${JSON.stringify(decision)}`);
  const accepted = { ...doc, accepted: true, refused: null, status: restoreStatusJson(status) };
  if (!cmd.wait) {
    rep.result({ ...accepted, result: null, error: null });
    return 0;
  }
  const result = handle.result() as Promise<RestoreVmResult>;
  const renderer = progressFor(cmd.progress, [cmd.vm]);
  if (renderer)
    await followRuns(client, [{ vm: cmd.vm, workflowId, runId: described.runId }], {
      until: result,
      renderer,
    });
  try {
    const r = await result;
    out(`${cmd.vm}: ${r.outcome} from ${r.backup}${r.state ? ` (VM ${r.state})` : ''}`);
    rep.result({ ...accepted, result: restoreResultJson(r), error: null });
    return r.outcome === 'restored' ? 0 : 1;
  } catch (err) {
    const message = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
    out(`${cmd.vm}: restore FAILED: ${message}`);
    rep.result({ ...accepted, result: null, error: { errorCode: failureMessage(err).code, message } });
    return 1;
  }
}

export async function abortRestore(
  client: Client,
  cmd: { vm: string; reason?: string | undefined; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  assertVmName(cmd.vm);
  const rep = report(io, cmd.json);
  const handle = client.workflow.getHandle(vmWorkflowId(cmd.vm));
  let status: RestoreStatus;
  try {
    status = await handle.executeUpdate(abortUpdate, { args: [{ reason: cmd.reason }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const why = err.cause?.message ?? err.message;
      rep.text(`abort refused: ${why}`);
      rep.result({ vm: cmd.vm, aborted: false, refused: why, status: null, result: null });
      return 1;
    }
    throw err;
  }
  const result = (await handle.result()) as RestoreVmResult;
  rep.text(`${cmd.vm}: restore ${result.outcome}${result.reason ? `: ${result.reason}` : ''}`);
  rep.result({
    vm: cmd.vm,
    aborted: true,
    refused: null,
    status: restoreStatusJson(status),
    result: restoreResultJson(result),
  });
  return 0;
}

export async function showRestore(
  client: Client,
  cmd: { vm: string; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  assertVmName(cmd.vm);
  const rep = report(io, cmd.json);
  const status = await client.workflow.getHandle(vmWorkflowId(cmd.vm)).query(restoreStatus);
  conflictTable(status).forEach((l) => rep.text(l));
  rep.result({ vm: cmd.vm, status: restoreStatusJson(status) });
  return 0;
}
