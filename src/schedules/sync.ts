import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, type Timing } from '../config';
import { withDirectory } from '../directory/connection';
import { StoneyTree } from '../directory/dn';
import { readPlanSchedules } from '../directory/plans';
import type { DirectoryConfig } from '../config';
import {
  describeChanges,
  desiredSchedules,
  diffSchedules,
  SCHEDULE_PREFIX,
  describeMaintenance,
  diffMaintenance,
  type DesiredSchedule,
  type ExistingSchedule,
  type MaintenanceSchedule,
} from '../domain/schedules';

export interface SyncOptions {
  timezone: string;
  timing: Timing;
  dryRun: boolean;
  /** Verification (and other fleet-wide) schedules to keep in line as well. */
  maintenance?: readonly MaintenanceSchedule[] | undefined;
}

/** What a schedule was made from, kept in its memo: describe() returns the spec in another form. */
interface ScheduleMemo {
  vmbackupCron?: string;
  vmbackupTimezone?: string;
  vmbackupActive?: boolean;
  planDn?: string;
}

async function existingSchedule(client: Client, id: string): Promise<ExistingSchedule | undefined> {
  try {
    const d = await client.schedule.getHandle(id).describe();
    const memo = (d.memo ?? {}) as ScheduleMemo;
    return {
      id,
      cron: memo.vmbackupCron,
      timezone: memo.vmbackupTimezone,
      paused: d.state.paused,
      planActive: memo.vmbackupActive,
    };
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

async function create(client: Client, d: DesiredSchedule, timing: Timing): Promise<void> {
  await client.schedule.create({
    scheduleId: d.id,
    spec: { cronExpressions: [d.cron], timezone: d.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: 'nightlyBackup',
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: `nightly/${d.id}`,
      args: [{ plan: d.plan, timing }],
      staticSummary: `Nightly backup of the VMs of plan ${d.planDn} (${d.cron}, ${d.timezone})`,
    },
    // A night missed while the server was down runs once when it is back (within a day);
    // a run still going when the next is due is not doubled.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
    state: { paused: d.paused, note: d.paused ? 'sstCronActive is FALSE' : `backup plan ${d.planDn}` },
    memo: {
      vmbackupCron: d.cron,
      vmbackupTimezone: d.timezone,
      vmbackupActive: !d.paused,
      planDn: d.planDn,
    } satisfies ScheduleMemo,
  });
}

async function createMaintenance(client: Client, m: MaintenanceSchedule, timing: Timing): Promise<void> {
  await client.schedule.create({
    scheduleId: m.id,
    spec: { cronExpressions: [m.cron], timezone: m.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: m.workflowType,
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: m.id,
      args: [{ ...m.input, timing }],
      staticSummary: m.note,
    },
    // A run still going (a long verification) is never doubled; a missed day is made up once.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 day' },
    state: { note: m.note },
    memo: { vmbackupCron: m.cron, vmbackupTimezone: m.timezone } satisfies ScheduleMemo,
  });
}

async function syncMaintenance(
  client: Client,
  schedules: readonly MaintenanceSchedule[],
  options: SyncOptions,
): Promise<string[]> {
  const lines: string[] = [];
  for (const m of schedules) {
    const change = diffMaintenance(m, await existingSchedule(client, m.id));
    if (!change) continue;
    if (!options.dryRun) {
      if (change.kind !== 'create') await client.schedule.getHandle(m.id).delete();
      if (change.kind !== 'delete') await createMaintenance(client, change.schedule, options.timing);
    }
    lines.push(describeMaintenance(change));
  }
  return lines;
}

/**
 * Makes the Temporal schedules match the backup plans in the directory: creates, updates
 * (re-creates), pauses, unpauses and deletes. Returns what it did, or `no changes`.
 */
export async function syncSchedules(
  client: Client,
  directory: DirectoryConfig,
  options: SyncOptions,
): Promise<string[]> {
  const plans = await withDirectory(directory, (dir) =>
    readPlanSchedules(dir, new StoneyTree(directory.baseDn)),
  );
  const desired = desiredSchedules(plans, options.timezone);
  const existing: ExistingSchedule[] = [];
  for (const d of desired) {
    const e = await existingSchedule(client, d.id);
    if (e) existing.push(e);
  }
  // Schedules whose plan is gone; the listing is eventually consistent, so a deletion may
  // show up one sync later.
  for await (const s of client.schedule.list()) {
    if (s.scheduleId.startsWith(SCHEDULE_PREFIX) && !desired.some((d) => d.id === s.scheduleId)) {
      existing.push({ id: s.scheduleId, cron: undefined, timezone: undefined, paused: false });
    }
  }
  const changes = diffSchedules(desired, existing);
  if (!options.dryRun) {
    for (const d of changes.create) await create(client, d, options.timing);
    // The memo cannot be updated in place: a changed plan re-creates its schedule.
    for (const d of new Set([...changes.update, ...changes.pause, ...changes.unpause])) {
      await client.schedule.getHandle(d.id).delete();
      await create(client, d, options.timing);
    }
    for (const id of changes.delete) {
      await client.schedule
        .getHandle(id)
        .delete()
        .catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
    }
  }
  const tense: Record<string, string> = {
    created: 'create',
    updated: 'update',
    paused: 'pause',
    unpaused: 'unpause',
    deleted: 'delete',
  };
  const maintenance = await syncMaintenance(client, options.maintenance ?? [], options);
  const planLines = describeChanges(changes);
  const all = maintenance.length
    ? [...planLines.filter((l) => l !== 'no changes'), ...maintenance]
    : planLines;
  return all.map((line) => {
    const [verb, ...rest] = line.split(' ');
    return options.dryRun && verb && tense[verb] ? `would ${tense[verb]} ${rest.join(' ')}` : line;
  });
}
