import { cronExpression, type CronFields } from './cron';
import type { PlanLevel } from './plan';

/** A plan that carries cron fields (sstCronObjectClass): it gets one Temporal schedule. */
export interface PlanSchedule {
  level: PlanLevel;
  /** Pool or VM name; undefined for the global plan. */
  name?: string | undefined;
  dn: string;
  cron: CronFields;
  active: boolean;
}

export interface PlanRef {
  level: PlanLevel;
  name?: string | undefined;
}

export interface DesiredSchedule {
  id: string;
  plan: PlanRef;
  planDn: string;
  cron: string;
  timezone: string;
  paused: boolean;
}

/** `vmbackup-plan-global`, `vmbackup-plan-pool-<pool>`, `vmbackup-plan-vm-<vm>`: an operator sees what each is. */
export function scheduleId(plan: PlanRef): string {
  return plan.level === 'global' ? 'vmbackup-plan-global' : `vmbackup-plan-${plan.level}-${plan.name}`;
}

export const SCHEDULE_PREFIX = 'vmbackup-plan-';

export function desiredSchedules(plans: readonly PlanSchedule[], timezone: string): DesiredSchedule[] {
  return plans
    .map((p) => ({
      id: scheduleId(p),
      plan: p.level === 'global' ? { level: p.level } : { level: p.level, name: p.name },
      planDn: p.dn,
      cron: cronExpression(p.cron),
      timezone,
      paused: !p.active,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

export interface ExistingSchedule {
  id: string;
  cron: string | undefined;
  timezone: string | undefined;
  paused: boolean;
  /** sstCronActive when the schedule was last made from its plan (kept in its memo). */
  planActive?: boolean | undefined;
}

export interface ScheduleChanges {
  create: DesiredSchedule[];
  update: DesiredSchedule[];
  pause: DesiredSchedule[];
  unpause: DesiredSchedule[];
  delete: string[];
}

/** What to change so that the schedules match the plans; empty lists when they already do. */
export function diffSchedules(
  desired: readonly DesiredSchedule[],
  existing: readonly ExistingSchedule[],
): ScheduleChanges {
  const have = new Map(existing.map((e) => [e.id, e]));
  const changes: ScheduleChanges = { create: [], update: [], pause: [], unpause: [], delete: [] };
  for (const d of desired) {
    const e = have.get(d.id);
    if (!e) {
      changes.create.push(d);
      continue;
    }
    if (e.cron !== d.cron || e.timezone !== d.timezone) changes.update.push(d);
    // Follow the plan's flag when it changed; otherwise leave an operator's manual
    // pause or unpause (`temporal schedule toggle`) alone.
    const flagChanged = e.planActive === undefined ? e.paused !== d.paused : e.planActive === d.paused;
    if (flagChanged) (d.paused ? changes.pause : changes.unpause).push(d);
  }
  const wanted = new Set(desired.map((d) => d.id));
  changes.delete = existing
    .filter((e) => e.id.startsWith(SCHEDULE_PREFIX) && !wanted.has(e.id))
    .map((e) => e.id)
    .sort();
  return changes;
}

export function describeChanges(c: ScheduleChanges): string[] {
  const lines = [
    ...c.create.map(
      (d) => `created ${d.id}: '${d.cron}' ${d.timezone}${d.paused ? ' (paused)' : ''} for ${d.planDn}`,
    ),
    ...c.update.map((d) => `updated ${d.id}: '${d.cron}' ${d.timezone}`),
    ...c.pause.map((d) => `paused ${d.id} (sstCronActive: FALSE)`),
    ...c.unpause.map((d) => `unpaused ${d.id} (sstCronActive: TRUE)`),
    ...c.delete.map((id) => `deleted ${id} (its plan is gone)`),
  ];
  return lines.length ? lines : ['no changes'];
}

/**
 * Fleet-wide schedules that are not backup plans: scheduled verification (and drills). Each
 * runs one workflow type on the control queue at a cron time from the environment, or is
 * absent when its cron is `off`.
 */
export interface MaintenanceSchedule {
  id: string;
  workflowType: string;
  /** Five cron fields, or `off`. */
  cron: string;
  timezone: string;
  /** What the schedule is for, kept as its note for operators. */
  note: string;
  /** The workflow's input besides the timing, which the sync adds. */
  input: Record<string, unknown>;
}

export type MaintenanceChange =
  { kind: 'create' | 'update'; schedule: MaintenanceSchedule } | { kind: 'delete'; id: string };

/** What to change so that a maintenance schedule matches its setting. */
export function diffMaintenance(
  desired: MaintenanceSchedule,
  existing: ExistingSchedule | undefined,
): MaintenanceChange | undefined {
  if (desired.cron === 'off') return existing ? { kind: 'delete', id: desired.id } : undefined;
  if (!existing) return { kind: 'create', schedule: desired };
  if (existing.cron !== desired.cron || existing.timezone !== desired.timezone)
    return { kind: 'update', schedule: desired };
  return undefined;
}

export function describeMaintenance(c: MaintenanceChange): string {
  if (c.kind === 'delete') return `deleted ${c.id} (turned off)`;
  return `${c.kind}d ${c.schedule.id}: '${c.schedule.cron}' ${c.schedule.timezone} (${c.schedule.note})`;
}

const CRON = /^\s*\S+\s+\S+\s+\S+\s+\S+\s+\S+\s*$/;

/** A cron setting from the environment: five fields or `off`, anything else is refused. */
export function maintenanceCron(value: string | undefined, fallback: string, variable: string): string {
  const v = (value ?? fallback).trim();
  if (v === 'off' || CRON.test(v)) return v.replace(/\s+/g, ' ');
  throw new Error(`${variable} must be five cron fields or off, got ${JSON.stringify(value)}`);
}
