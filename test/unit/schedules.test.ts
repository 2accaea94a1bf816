import { describe, expect, it } from 'vitest';
import type { CronFields } from '../../src/domain/cron';
import {
  SCHEDULE_PREFIX,
  describeChanges,
  desiredSchedules,
  diffSchedules,
  scheduleId,
  describeMaintenance,
  diffMaintenance,
  maintenanceCron,
  type MaintenanceSchedule,
  type DesiredSchedule,
  type ExistingSchedule,
  type PlanSchedule,
  type ScheduleChanges,
} from '../../src/domain/schedules';
import { expectBackupError } from './expect-backup-error';

const BASE = 'o=stepping-stone,c=ch';
const GLOBAL_DN = `ou=backup,ou=configuration,ou=virtualization,ou=services,${BASE}`;
const poolDn = (pool: string) =>
  `ou=backup,sstVirtualMachinePool=${pool},ou=virtual machine pools,ou=virtualization,ou=services,${BASE}`;
const vmDn = (vm: string) =>
  `ou=backup,sstVirtualMachine=${vm},ou=virtual machines,ou=virtualization,ou=services,${BASE}`;

const NIGHTLY: CronFields = { minute: ['0'], hour: ['3'], day: ['*'], month: ['*'], dayOfWeek: ['*'] };
const TZ = 'Europe/Zurich';

function plan(
  level: PlanSchedule['level'],
  name?: string,
  overrides: Partial<PlanSchedule> = {},
): PlanSchedule {
  const dn = level === 'global' ? GLOBAL_DN : level === 'pool' ? poolDn(name ?? '') : vmDn(name ?? '');
  return { level, name, dn, cron: NIGHTLY, active: true, ...overrides };
}

function desired(id: string, overrides: Partial<DesiredSchedule> = {}): DesiredSchedule {
  return {
    id,
    plan: { level: 'global' },
    planDn: GLOBAL_DN,
    cron: '0 3 * * *',
    timezone: TZ,
    paused: false,
    ...overrides,
  };
}

function existing(d: DesiredSchedule, overrides: Partial<ExistingSchedule> = {}): ExistingSchedule {
  return { id: d.id, cron: d.cron, timezone: d.timezone, paused: d.paused, ...overrides };
}

const NO_CHANGES: ScheduleChanges = { create: [], update: [], pause: [], unpause: [], delete: [] };

describe('scheduleId', () => {
  it('names the global plan vmbackup-plan-global', () => {
    expect(scheduleId({ level: 'global' })).toBe('vmbackup-plan-global');
  });

  it('ignores a name given with the global plan', () => {
    expect(scheduleId({ level: 'global', name: 'ignored' })).toBe('vmbackup-plan-global');
  });

  it('names a pool plan vmbackup-plan-pool-<pool>', () => {
    expect(scheduleId({ level: 'pool', name: 'production' })).toBe('vmbackup-plan-pool-production');
  });

  it('names a VM plan vmbackup-plan-vm-<vm>', () => {
    expect(scheduleId({ level: 'vm', name: '0f83f084-8080-413e-b558-b678e504836e' })).toBe(
      'vmbackup-plan-vm-0f83f084-8080-413e-b558-b678e504836e',
    );
  });

  it('gives a pool and a VM of the same name different ids', () => {
    expect(scheduleId({ level: 'pool', name: 'web' })).not.toBe(scheduleId({ level: 'vm', name: 'web' }));
  });

  it('starts every id with the schedule prefix', () => {
    expect(SCHEDULE_PREFIX).toBe('vmbackup-plan-');
    for (const ref of [
      { level: 'global' },
      { level: 'pool', name: 'p' },
      { level: 'vm', name: 'v' },
    ] as const) {
      expect(scheduleId(ref).startsWith(SCHEDULE_PREFIX)).toBe(true);
    }
  });
});

describe('desiredSchedules', () => {
  it('turns an active global plan into an unpaused schedule with its cron expression and the timezone', () => {
    expect(desiredSchedules([plan('global')], TZ)).toStrictEqual([
      {
        id: 'vmbackup-plan-global',
        plan: { level: 'global' },
        planDn: GLOBAL_DN,
        cron: '0 3 * * *',
        timezone: TZ,
        paused: false,
      },
    ]);
  });

  it('carries the pool name in the plan reference of a pool schedule', () => {
    expect(desiredSchedules([plan('pool', 'production')], 'UTC')).toStrictEqual([
      {
        id: 'vmbackup-plan-pool-production',
        plan: { level: 'pool', name: 'production' },
        planDn: poolDn('production'),
        cron: '0 3 * * *',
        timezone: 'UTC',
        paused: false,
      },
    ]);
  });

  it('carries the VM name in the plan reference of a VM schedule', () => {
    const [d] = desiredSchedules([plan('vm', 'web01')], TZ);
    expect(d?.id).toBe('vmbackup-plan-vm-web01');
    expect(d?.plan).toStrictEqual({ level: 'vm', name: 'web01' });
    expect(d?.planDn).toBe(vmDn('web01'));
  });

  it('drops a name given with the global plan from its plan reference', () => {
    const [d] = desiredSchedules([plan('global', 'stray')], TZ);
    expect(d?.plan).toStrictEqual({ level: 'global' });
  });

  it('pauses the schedule of a plan that is not active', () => {
    const [d] = desiredSchedules([plan('pool', 'test', { active: false })], TZ);
    expect(d?.paused).toBe(true);
  });

  it('builds the cron expression from the plan cron fields', () => {
    const cron: CronFields = {
      minute: ['15', '45'],
      hour: ['1-5/2'],
      day: ['*'],
      month: ['*'],
      dayOfWeek: ['1-5'],
    };
    const [d] = desiredSchedules([plan('vm', 'db', { cron })], TZ);
    expect(d?.cron).toBe('15,45 1-5/2 * * 1-5');
  });

  it('sorts the schedules by id', () => {
    const plans = [
      plan('vm', 'zeta'),
      plan('pool', 'beta'),
      plan('vm', 'alpha'),
      plan('global'),
      plan('pool', 'alpha'),
    ];
    expect(desiredSchedules(plans, TZ).map((d) => d.id)).toEqual([
      'vmbackup-plan-global',
      'vmbackup-plan-pool-alpha',
      'vmbackup-plan-pool-beta',
      'vmbackup-plan-vm-alpha',
      'vmbackup-plan-vm-zeta',
    ]);
  });

  it('gives no schedules for no plans', () => {
    expect(desiredSchedules([], TZ)).toEqual([]);
  });

  it('refuses a plan with invalid cron fields with the cron error', () => {
    const cron: CronFields = { ...NIGHTLY, hour: ['24'] };
    expectBackupError(
      () => desiredSchedules([plan('global'), plan('vm', 'x', { cron })], TZ),
      39,
      /^sstCronHour/,
    );
  });

  it('refuses a plan with a missing cron field with code 2', () => {
    const cron: CronFields = { ...NIGHTLY, dayOfWeek: [] };
    expectBackupError(
      () => desiredSchedules([plan('pool', 'p', { cron })], TZ),
      2,
      'sstCronDayOfWeek is missing',
    );
  });
});

describe('diffSchedules', () => {
  const global = desired('vmbackup-plan-global');
  const pool = desired('vmbackup-plan-pool-production', {
    plan: { level: 'pool', name: 'production' },
    planDn: poolDn('production'),
  });

  it('changes nothing when the schedules match the plans', () => {
    expect(diffSchedules([global, pool], [existing(global), existing(pool)])).toEqual(NO_CHANGES);
  });

  it('changes nothing when there are neither plans nor schedules', () => {
    expect(diffSchedules([], [])).toEqual(NO_CHANGES);
  });

  it('creates a schedule that does not exist yet', () => {
    expect(diffSchedules([global, pool], [existing(global)])).toEqual({ ...NO_CHANGES, create: [pool] });
  });

  it('creates a paused schedule only once, without also listing it to pause', () => {
    const paused = desired('vmbackup-plan-vm-web01', { paused: true });
    expect(diffSchedules([paused], [])).toEqual({ ...NO_CHANGES, create: [paused] });
  });

  it('updates a schedule whose cron expression differs', () => {
    expect(diffSchedules([global], [existing(global, { cron: '30 2 * * *' })])).toEqual({
      ...NO_CHANGES,
      update: [global],
    });
  });

  it('updates a schedule whose timezone differs', () => {
    expect(diffSchedules([global], [existing(global, { timezone: 'UTC' })])).toEqual({
      ...NO_CHANGES,
      update: [global],
    });
  });

  it('updates a schedule whose cron expression and timezone are unknown', () => {
    expect(diffSchedules([global], [existing(global, { cron: undefined, timezone: undefined })])).toEqual({
      ...NO_CHANGES,
      update: [global],
    });
  });

  it('updates a schedule that differs in both cron and timezone only once', () => {
    expect(
      diffSchedules([global], [existing(global, { cron: '0 4 * * *', timezone: 'UTC' })]).update,
    ).toEqual([global]);
  });

  it('pauses a running schedule whose plan is no longer active', () => {
    const d = desired('vmbackup-plan-pool-test', { paused: true });
    expect(diffSchedules([d], [existing(d, { paused: false })])).toEqual({ ...NO_CHANGES, pause: [d] });
  });

  it('unpauses a paused schedule whose plan is active again', () => {
    expect(diffSchedules([global], [existing(global, { paused: true })])).toEqual({
      ...NO_CHANGES,
      unpause: [global],
    });
  });

  it('both updates and pauses a schedule that differs in cron and paused state', () => {
    const d = desired('vmbackup-plan-vm-db', { paused: true });
    expect(diffSchedules([d], [existing(d, { cron: '0 1 * * *', paused: false })])).toEqual({
      ...NO_CHANGES,
      update: [d],
      pause: [d],
    });
  });

  it('deletes a vmbackup-plan-* schedule whose plan is gone', () => {
    const gone: ExistingSchedule = {
      id: 'vmbackup-plan-vm-old',
      cron: '0 3 * * *',
      timezone: TZ,
      paused: false,
    };
    expect(diffSchedules([global], [existing(global), gone])).toEqual({
      ...NO_CHANGES,
      delete: ['vmbackup-plan-vm-old'],
    });
  });

  it('deletes every schedule when no plan carries cron fields any more', () => {
    expect(diffSchedules([], [existing(pool), existing(global)])).toEqual({
      ...NO_CHANGES,
      delete: ['vmbackup-plan-global', 'vmbackup-plan-pool-production'],
    });
  });

  it('never deletes schedules without the vmbackup-plan- prefix', () => {
    const others: ExistingSchedule[] = [
      { id: 'nightly-report', cron: '0 6 * * *', timezone: TZ, paused: false },
      { id: 'vmbackup-global', cron: undefined, timezone: undefined, paused: true },
      { id: 'Vmbackup-plan-vm-x', cron: undefined, timezone: undefined, paused: false },
      { id: 'other-vmbackup-plan-vm-x', cron: undefined, timezone: undefined, paused: false },
    ];
    expect(diffSchedules([global], [existing(global), ...others])).toEqual(NO_CHANGES);
  });

  it('lists the schedules to delete sorted', () => {
    const ids = ['vmbackup-plan-vm-c', 'vmbackup-plan-global', 'vmbackup-plan-vm-a', 'vmbackup-plan-pool-b'];
    const have = ids.map((id) => ({ id, cron: '0 3 * * *', timezone: TZ, paused: false }));
    expect(diffSchedules([], have).delete).toEqual([
      'vmbackup-plan-global',
      'vmbackup-plan-pool-b',
      'vmbackup-plan-vm-a',
      'vmbackup-plan-vm-c',
    ]);
  });

  it('handles create, update, pause, unpause and delete together', () => {
    const created = desired('vmbackup-plan-vm-new');
    const updated = desired('vmbackup-plan-pool-production', { cron: '15 2 * * *' });
    const paused = desired('vmbackup-plan-pool-test', { paused: true });
    const unpaused = desired('vmbackup-plan-vm-db');
    const kept = desired('vmbackup-plan-global');
    const changes = diffSchedules(
      [created, updated, paused, unpaused, kept],
      [
        existing(updated, { cron: '0 3 * * *' }),
        existing(paused, { paused: false }),
        existing(unpaused, { paused: true }),
        existing(kept),
        { id: 'vmbackup-plan-vm-removed', cron: '0 3 * * *', timezone: TZ, paused: false },
        { id: 'someone-elses', cron: '0 3 * * *', timezone: TZ, paused: false },
      ],
    );
    expect(changes).toEqual({
      create: [created],
      update: [updated],
      pause: [paused],
      unpause: [unpaused],
      delete: ['vmbackup-plan-vm-removed'],
    });
  });
});

describe('describeChanges', () => {
  it('says "no changes" when every list is empty', () => {
    expect(describeChanges(NO_CHANGES)).toEqual(['no changes']);
  });

  it('says "no changes" for the diff of matching schedules', () => {
    const d = desired('vmbackup-plan-global');
    expect(describeChanges(diffSchedules([d], [existing(d)]))).toEqual(['no changes']);
  });

  it('describes a created schedule with its cron expression, timezone and plan DN', () => {
    expect(describeChanges({ ...NO_CHANGES, create: [desired('vmbackup-plan-global')] })).toEqual([
      `created vmbackup-plan-global: '0 3 * * *' Europe/Zurich for ${GLOBAL_DN}`,
    ]);
  });

  it('marks a created schedule that starts paused', () => {
    const d = desired('vmbackup-plan-pool-test', { paused: true, planDn: poolDn('test'), timezone: 'UTC' });
    expect(describeChanges({ ...NO_CHANGES, create: [d] })).toEqual([
      `created vmbackup-plan-pool-test: '0 3 * * *' UTC (paused) for ${poolDn('test')}`,
    ]);
  });

  it('describes an updated schedule with its new cron expression and timezone', () => {
    const d = desired('vmbackup-plan-vm-db', { cron: '*/15 1-5/2 * * 1-5' });
    expect(describeChanges({ ...NO_CHANGES, update: [d] })).toEqual([
      "updated vmbackup-plan-vm-db: '*/15 1-5/2 * * 1-5' Europe/Zurich",
    ]);
  });

  it('describes a paused schedule with the attribute that paused it', () => {
    expect(
      describeChanges({ ...NO_CHANGES, pause: [desired('vmbackup-plan-vm-db', { paused: true })] }),
    ).toEqual(['paused vmbackup-plan-vm-db (sstCronActive: FALSE)']);
  });

  it('describes an unpaused schedule with the attribute that unpaused it', () => {
    expect(describeChanges({ ...NO_CHANGES, unpause: [desired('vmbackup-plan-vm-db')] })).toEqual([
      'unpaused vmbackup-plan-vm-db (sstCronActive: TRUE)',
    ]);
  });

  it('describes a deleted schedule', () => {
    expect(describeChanges({ ...NO_CHANGES, delete: ['vmbackup-plan-vm-old'] })).toEqual([
      'deleted vmbackup-plan-vm-old (its plan is gone)',
    ]);
  });

  it('lists creations, updates, pauses, unpauses and deletions in that order, one line each', () => {
    const changes: ScheduleChanges = {
      create: [desired('vmbackup-plan-vm-a'), desired('vmbackup-plan-vm-b')],
      update: [desired('vmbackup-plan-pool-p', { cron: '5 4 * * *' })],
      pause: [desired('vmbackup-plan-vm-c', { paused: true })],
      unpause: [desired('vmbackup-plan-vm-d')],
      delete: ['vmbackup-plan-vm-e', 'vmbackup-plan-vm-f'],
    };
    expect(describeChanges(changes)).toEqual([
      `created vmbackup-plan-vm-a: '0 3 * * *' Europe/Zurich for ${GLOBAL_DN}`,
      `created vmbackup-plan-vm-b: '0 3 * * *' Europe/Zurich for ${GLOBAL_DN}`,
      "updated vmbackup-plan-pool-p: '5 4 * * *' Europe/Zurich",
      'paused vmbackup-plan-vm-c (sstCronActive: FALSE)',
      'unpaused vmbackup-plan-vm-d (sstCronActive: TRUE)',
      'deleted vmbackup-plan-vm-e (its plan is gone)',
      'deleted vmbackup-plan-vm-f (its plan is gone)',
    ]);
  });
});

describe('diffSchedules and manual pauses', () => {
  const desired = desiredSchedules(
    [
      {
        level: 'global',
        dn: 'ou=backup,ou=configuration',
        cron: { minute: ['0'], hour: ['3'], day: ['*'], month: ['*'], dayOfWeek: ['*'] },
        active: true,
      },
    ],
    'UTC',
  );
  it("leaves an operator's manual pause alone while the plan's flag is unchanged", () => {
    const changes = diffSchedules(desired, [
      { id: 'vmbackup-plan-global', cron: '0 3 * * *', timezone: 'UTC', paused: true, planActive: true },
    ]);
    expect(describeChanges(changes)).toEqual(['no changes']);
  });
  it('unpauses when the plan was re-activated', () => {
    const changes = diffSchedules(desired, [
      { id: 'vmbackup-plan-global', cron: '0 3 * * *', timezone: 'UTC', paused: true, planActive: false },
    ]);
    expect(changes.unpause.map((d) => d.id)).toEqual(['vmbackup-plan-global']);
  });
});

describe('maintenance schedules', () => {
  const verify: MaintenanceSchedule = {
    id: 'vmbackup-verify',
    workflowType: 'verifyFleet',
    cron: '30 13 * * *',
    timezone: 'UTC',
    note: 'n',
    input: { windowDays: 7 },
  };
  const existing = (cron: string, timezone = 'UTC') => ({ id: verify.id, cron, timezone, paused: false });

  it('creates a missing schedule, updates a changed one and leaves a matching one alone', () => {
    expect(diffMaintenance(verify, undefined)).toEqual({ kind: 'create', schedule: verify });
    expect(diffMaintenance(verify, existing('0 1 * * *'))).toEqual({ kind: 'update', schedule: verify });
    expect(diffMaintenance(verify, existing('30 13 * * *', 'Europe/Zurich'))?.kind).toBe('update');
    expect(diffMaintenance(verify, existing('30 13 * * *'))).toBeUndefined();
  });

  it('deletes a schedule that was turned off, and does nothing when it is off and absent', () => {
    expect(diffMaintenance({ ...verify, cron: 'off' }, existing('30 13 * * *'))).toEqual({
      kind: 'delete',
      id: verify.id,
    });
    expect(diffMaintenance({ ...verify, cron: 'off' }, undefined)).toBeUndefined();
    expect(describeMaintenance({ kind: 'delete', id: verify.id })).toBe(
      'deleted vmbackup-verify (turned off)',
    );
    expect(describeMaintenance({ kind: 'create', schedule: verify })).toBe(
      "created vmbackup-verify: '30 13 * * *' UTC (n)",
    );
  });

  it('takes five cron fields or off from the environment, and refuses anything else', () => {
    expect(maintenanceCron(undefined, '30 13 * * *', 'V')).toBe('30 13 * * *');
    expect(maintenanceCron(' 0  2 * * 0 ', 'x', 'V')).toBe('0 2 * * 0');
    expect(maintenanceCron('off', 'x', 'V')).toBe('off');
    expect(() => maintenanceCron('every day', 'x', 'V')).toThrow(/V must be five cron fields or off/);
    expect(() => maintenanceCron('* * * *', 'x', 'V')).toThrow(/five cron fields/);
  });
});
