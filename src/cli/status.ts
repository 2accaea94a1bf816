import { randomBytes } from 'node:crypto';
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { CONTROL_TASK_QUEUE } from '../config';
import { assertNodeName, nodeTaskQueue } from '../domain/names';
import { toIo, type Io } from './io';
import { vmStatuses, type TemporalFacts, type VmFacts, type VmStatus } from '../domain/status';

/** A node counts as having a worker when one polled its queue within this time. */
const POLLER_FRESH_MS = 5 * 60_000;

async function nextRuns(client: Client, ids: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const id of ids) {
    try {
      const d = await client.schedule.getHandle(id).describe();
      // A paused schedule runs nothing: no next run.
      out[id] = d.state.paused ? [] : d.info.nextActionTimes.map((t) => t.toISOString());
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      out[id] = [];
    }
  }
  return out;
}

async function nodesWithWorker(
  client: Client,
  namespace: string,
  nodes: readonly string[],
): Promise<string[]> {
  const present: string[] = [];
  for (const node of nodes) {
    let queue: string;
    try {
      queue = nodeTaskQueue(node);
    } catch {
      continue; // a node name no worker can have
    }
    const r = await client.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: queue },
      taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    });
    const fresh = (r.pollers ?? []).some((p) => {
      const s = p.lastAccessTime?.seconds;
      return s !== undefined && s !== null && Date.now() - Number(s) * 1000 < POLLER_FRESH_MS;
    });
    if (fresh) present.push(node);
  }
  return present;
}

const cell = (s: string, n: number) => s.padEnd(n);

/** One line per VM: what an operator reads in the morning. */
export function statusLine(s: VmStatus): string {
  const plan = s.plan ? `${s.plan.level}/${s.plan.mode}` : '-';
  const last = s.lastBackup ? `${s.lastBackup.runDate} (${s.lastBackup.ageHours} h)` : 'never';
  const run = s.lastRun
    ? `${s.lastRun.outcome}${s.lastRun.returnValue ? ` ${s.lastRun.returnValue}` : ''}`
    : '-';
  const verified = s.verification
    ? `${s.verification.outcome} ${s.verification.checkedAt.slice(0, 10)}`
    : 'never';
  const next = s.nextRun ? s.nextRun.replace(/:\d\d\.\d{3}Z$/, 'Z') : '-';
  return [
    cell(s.vm, 20),
    cell(s.node, 14),
    cell(plan, 12),
    cell(last, 28),
    cell(run, 10),
    cell(verified, 22),
    cell(next, 18),
    s.ok ? 'OK' : `FAIL: ${s.reasons.join('; ')}`,
  ].join(' ');
}

/**
 * `vmbackup status`: every VM (of one node) with its plan and mode, last good backup and its
 * age, the last run's outcome, why the nightly run skips it, its verification, the next
 * scheduled run. Exit 0 when every VM that should be backed up is fine, 1 otherwise: usable
 * as a monitoring check as it is.
 */
export async function runStatus(
  client: Client,
  cmd: { node?: string | undefined; json: boolean; namespace: string },
  output: Io | ((line: string) => void),
): Promise<number> {
  const out = toIo(output).out;
  if (cmd.node !== undefined) assertNodeName(cmd.node);
  const vms = (await client.workflow.execute('fleetStatus', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: `status/${randomBytes(4).toString('hex')}`,
    args: [{ node: cmd.node }],
  })) as VmFacts[];
  const facts: TemporalFacts = {
    nextRuns: await nextRuns(client, [...new Set(vms.flatMap((v) => (v.scheduleId ? [v.scheduleId] : [])))]),
    nodesWithWorker: await nodesWithWorker(
      client,
      cmd.namespace,
      [...new Set(vms.map((v) => v.node))].filter(Boolean),
    ),
  };
  const statuses = vmStatuses(vms, facts, new Date());
  const ok = statuses.every((s) => s.ok);
  if (cmd.json) out(JSON.stringify({ ok, vms: statuses }, null, 2));
  else {
    out(
      [
        cell('VM', 20),
        cell('NODE', 14),
        cell('PLAN', 12),
        cell('LAST GOOD BACKUP (AGE)', 28),
        cell('LAST RUN', 10),
        cell('VERIFIED', 22),
        cell('NEXT RUN', 18),
        'STATUS',
      ].join(' '),
    );
    statuses.forEach((s) => out(statusLine(s)));
    const bad = statuses.filter((s) => !s.ok).length;
    out(bad ? `${bad} of ${statuses.length} VMs need attention` : `all ${statuses.length} VMs are fine`);
  }
  return ok ? 0 : 1;
}
