import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/dev-env';
import { maintenanceSchedules, scheduleTimezone, timingFromEnv } from '../../src/config';
import { defaultPlan } from '../../src/dev/sandbox-vm';
import { withDirectory } from '../../src/directory/connection';
import { initializeLeaf, updateLeaf } from '../../src/directory/run-leaf';
import { syncSchedules } from '../../src/schedules/sync';
import type { NightlyBackupResult } from '../../src/workflows/nightly-backup';
import {
  backup,
  controlDirectory,
  createVm,
  directory,
  guestReads,
  guestWrite,
  leaves,
  listFiles,
  MiB,
  removeVm,
  roots,
  temporal,
  tree,
  virsh,
} from '../support/harness';
import { WorkerProcess } from '../support/worker-process';

const planValues = (overrides: Record<string, string> = {}) =>
  Object.fromEntries(
    Object.entries({
      ...defaultPlan({ retainRoot: roots.retain, backupRoot: roots.backup, ramDisk: roots.ramDisk }),
      ...overrides,
    }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;

async function addPool(pool: string, plan: Record<string, string>): Promise<void> {
  await withDirectory(directory, async (dir) => {
    if (!(await dir.read(tree.pool(pool)))) {
      await dir.add(tree.pool(pool), {
        objectClass: ['top', 'sstVirtualMachines'],
        sstVirtualMachinePool: pool,
      });
    }
    await dir.add(tree.poolBackup(pool), {
      objectClass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass', 'sstCronObjectClass'],
      ou: 'backup',
      ...plan,
    });
  });
}

async function removeEntry(dn: string): Promise<void> {
  await withDirectory(directory, async (dir) => {
    const entries = await dir.search(dn, 'sub', '(objectClass=*)', ['1.1']);
    for (const e of entries.sort((a, b) => b.dn.split(',').length - a.dn.split(',').length))
      await dir.del(e.dn);
  });
}

const sync = async (dryRun = false) =>
  // As the control worker syncs: with its identity, so that its access rules are exercised.
  syncSchedules(await temporal(), controlDirectory, {
    timezone: scheduleTimezone(),
    timing: timingFromEnv(),
    dryRun,
  });

async function scheduleDescription(id: string) {
  return (await temporal()).schedule.getHandle(id).describe();
}

describe('schedules from the directory', () => {
  const pool = 'vmbt-sched-pool';
  const vm = 'vmbt-sched-vm';

  afterAll(async () => {
    await removeEntry(tree.globalBackupPlan).catch(() => undefined);
    await removeEntry(tree.pool(pool)).catch(() => undefined);
    await removeVm(vm).catch(() => undefined);
    await sync().catch(() => undefined);
  });

  it('creates a schedule per plan at every level, changes and pauses them with their plans, and a second sync changes nothing', async () => {
    await withDirectory(directory, (dir) =>
      dir.add(tree.globalBackupPlan, {
        objectClass: [
          'top',
          'organizationalUnit',
          'sstVirtualizationBackupObjectClass',
          'sstCronObjectClass',
        ],
        ou: 'backup',
        ...planValues(),
      }),
    );
    await addPool(pool, planValues({ sstCronMinute: '30', sstCronHour: '2', sstCronDayOfWeek: '1-5' }));
    await createVm({
      name: vm,
      node: 'vmbt-node-s',
      running: false,
      planOverrides: { sstCronMinute: '15', sstCronHour: '1' },
    });
    const ids = ['vmbackup-plan-global', `vmbackup-plan-pool-${pool}`, `vmbackup-plan-vm-${vm}`];

    const dry = await sync(true);
    expect(dry).toEqual(
      expect.arrayContaining([expect.stringMatching(/^would create vmbackup-plan-global: '0 3 \* \* \*'/)]),
    );
    await expect(scheduleDescription('vmbackup-plan-global')).rejects.toThrow();

    const first = await sync();
    expect(first).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^created vmbackup-plan-global: '0 3 \* \* \*' UTC for ou=backup,ou=configuration/,
        ),
        expect.stringMatching(new RegExp(`^created vmbackup-plan-pool-${pool}: '30 2 \\* \\* 1-5' UTC`)),
        expect.stringMatching(new RegExp(`^created vmbackup-plan-vm-${vm}: '15 1 \\* \\* \\*' UTC`)),
      ]),
    );
    for (const id of ids) {
      const d = await scheduleDescription(id);
      expect(d.state.paused).toBe(false);
      expect(d.policies.overlap).toBe('SKIP');
      expect(d.policies.catchupWindow).toBe(24 * 3600 * 1000);
      expect(d.action).toMatchObject({
        type: 'startWorkflow',
        workflowType: 'nightlyBackup',
        taskQueue: 'vmbackup-control',
      });
    }
    expect(await sync()).toEqual(['no changes']);
    // An operator's manual pause survives the sync while the plan's flag does not change.
    await (await temporal()).schedule.getHandle('vmbackup-plan-global').pause('maintenance');
    expect(await sync()).toEqual(['no changes']);
    expect((await scheduleDescription('vmbackup-plan-global')).state.paused).toBe(true);

    // Change the pool's time and deactivate the VM's plan.
    await withDirectory(directory, async (dir) => {
      await dir.replace(tree.poolBackup(pool), { sstCronHour: '4' });
      await dir.replace(tree.vmBackup(vm), { sstCronActive: 'FALSE' });
    });
    expect(await sync()).toEqual([
      `updated vmbackup-plan-pool-${pool}: '30 4 * * 1-5' UTC`,
      `paused vmbackup-plan-vm-${vm} (sstCronActive: FALSE)`,
    ]);
    expect((await scheduleDescription(`vmbackup-plan-vm-${vm}`)).state.paused).toBe(true);
    expect((await scheduleDescription(`vmbackup-plan-pool-${pool}`)).memo).toMatchObject({
      vmbackupCron: '30 4 * * 1-5',
    });
    expect(await sync()).toEqual(['no changes']);

    // A removed plan loses its schedule (schedule listings are eventually consistent).
    await removeEntry(tree.poolBackup(pool));
    let deleted: string[] = [];
    for (let i = 0; i < 20 && !deleted.some((l) => l.startsWith(`deleted vmbackup-plan-pool-${pool}`)); i++) {
      deleted = await sync();
      await sleep(500);
    }
    expect(deleted).toContain(`deleted vmbackup-plan-pool-${pool} (its plan is gone)`);
    await expect(scheduleDescription(`vmbackup-plan-pool-${pool}`)).rejects.toThrow();
  });

  it('keeps the verification schedule in line with its setting: created, changed, left alone, deleted when off', async () => {
    const client = await temporal();
    const withVerify = (env: NodeJS.ProcessEnv) =>
      syncSchedules(client, controlDirectory, {
        timezone: scheduleTimezone(),
        timing: timingFromEnv(),
        dryRun: false,
        // The drill schedule has a test of its own.
        maintenance: maintenanceSchedules(env).filter((s) => s.id === 'vmbackup-verify'),
      });
    await client.schedule
      .getHandle('vmbackup-verify')
      .delete()
      .catch(() => undefined);
    expect(await withVerify({ VMBACKUP_VERIFY_WINDOW_DAYS: '5' })).toContainEqual(
      expect.stringMatching(/^created vmbackup-verify: '30 13 \* \* \*' UTC/),
    );
    const made = await scheduleDescription('vmbackup-verify');
    expect(made.action).toMatchObject({ workflowType: 'verifyFleet', workflowId: 'vmbackup-verify' });
    expect(made.policies.overlap).toBe('SKIP');
    expect(await withVerify({ VMBACKUP_VERIFY_CRON: '0 2 * * *' })).toContainEqual(
      expect.stringMatching(/^updated vmbackup-verify: '0 2 \* \* \*'/),
    );
    expect(await withVerify({ VMBACKUP_VERIFY_CRON: '0 2 * * *' })).toEqual(['no changes']);
    expect(await withVerify({ VMBACKUP_VERIFY_CRON: 'off' })).toEqual([
      'deleted vmbackup-verify (turned off)',
    ]);
    await expect(scheduleDescription('vmbackup-verify')).rejects.toThrow();
  });
});

describe('the nightly run', () => {
  const pool = 'vmbt-night-pool';
  const NODE_A = 'vmbt-node-na';
  const NODE_B = 'vmbt-node-nb';
  const vms = {
    ok: 'vmbt-night-ok',
    elsewhere: 'vmbt-night-down',
    excluded: 'vmbt-night-excl',
    failedBefore: 'vmbt-night-fail',
  };
  let worker: WorkerProcess;

  beforeAll(async () => {
    worker = await WorkerProcess.start(['node', '--node', NODE_A]);
  });

  afterAll(async () => {
    await worker?.stop();
    await (
      await temporal()
    ).schedule
      .getHandle(`vmbackup-plan-pool-${pool}`)
      .delete()
      .catch(() => undefined);
    for (const vm of Object.values(vms)) await removeVm(vm, pool).catch(() => undefined);
    await removeEntry(tree.pool(pool)).catch(() => undefined);
  });

  it('runs from its schedule: skips excluded and previously failed VMs with the reason, backs up the others, and a node without worker fails only its own VMs', async () => {
    await addPool(pool, planValues());
    const data = { pattern: 0x3c, offset: 0, length: MiB };
    await createVm({ name: vms.ok, node: NODE_A, pool, plan: null });
    await guestWrite(vms.ok, 0, data);
    await createVm({ name: vms.elsewhere, node: NODE_B, pool, plan: null });
    await createVm({ name: vms.excluded, node: NODE_A, pool, plan: { sstBackupExcludeFromBackup: 'TRUE' } });
    await createVm({ name: vms.failedBefore, node: NODE_A, pool, plan: null });
    await withDirectory(directory, async (dir) => {
      await initializeLeaf(dir, tree, vms.failedBefore, '20200101T030000Z', new Date());
      await updateLeaf(
        dir,
        tree,
        vms.failedBefore,
        '20200101T030000Z',
        { mode: 'merging', state: '0', returnValue: 11 },
        new Date(),
      );
    });
    const downBefore = await fs.readdir(
      path.join(process.env['VMBACKUP_IMAGES_ROOT']!, 'vm-persistent', pool),
    );
    // Node B had a worker too; it is stopped before the night comes.
    const workerB = await WorkerProcess.start(['node', '--node', NODE_B]);
    await workerB.stop();

    expect(await sync()).toEqual(
      expect.arrayContaining([expect.stringMatching(new RegExp(`^created vmbackup-plan-pool-${pool}:`))]),
    );
    const schedule = (await temporal()).schedule.getHandle(`vmbackup-plan-pool-${pool}`);
    await schedule.trigger();
    let workflowId: string | undefined;
    for (let i = 0; i < 60 && !workflowId; i++) {
      const action = (await schedule.describe()).info.recentActions.at(-1)?.action;
      workflowId = action?.workflow.workflowId;
      if (!workflowId) await sleep(500);
    }
    expect(workflowId).toMatch(new RegExp(`^nightly/vmbackup-plan-pool-${pool}`));
    const result = (await (await temporal()).workflow.getHandle(workflowId!).result()) as NightlyBackupResult;

    expect(result.backedUp.map((b) => b.vm)).toEqual([vms.ok]);
    expect(result.skipped).toEqual([
      { vm: vms.excluded, reason: 'excluded from backup (sstBackupExcludeFromBackup: TRUE)' },
      {
        vm: vms.failedBefore,
        reason: expect.stringMatching(
          /last backup 20200101T030000Z did not finish cleanly \(mode merging, return value 11\): .*delete the leaf ou=20200101T030000Z,ou=backup,sstVirtualMachine=vmbt-night-fail,/,
        ),
      },
    ]);
    expect(result.failed).toEqual([
      {
        vm: vms.elsewhere,
        node: NODE_B,
        reason: expect.stringMatching(/node vmbt-node-nb not reachable/),
        errorCode: 1,
      },
    ]);

    expect((await leaves(vms.ok)).find((l) => l.runDate === result.runDate)).toMatchObject({
      mode: 'finished',
      returnValue: 0,
    });
    expect(await guestReads(vms.ok, 0, data)).toBe(true);
    expect(await virsh.state(vms.elsewhere)).toBe('running');
    expect(await fs.readdir(path.join(process.env['VMBACKUP_IMAGES_ROOT']!, 'vm-persistent', pool))).toEqual(
      downBefore,
    );
    expect(await leaves(vms.excluded)).toEqual([]);
  });
});

describe('retention', () => {
  const vm = 'vmbt-retention';
  let worker: WorkerProcess;

  beforeAll(async () => {
    worker = await WorkerProcess.start(['node', '--node', 'vmbt-node-ret']);
  });

  afterAll(async () => {
    await worker?.stop();
    await removeVm(vm).catch(() => undefined);
  });

  it('keeps the two newest finished backups, files and leaves, and a failed newest run deletes nothing', async () => {
    await createVm({ name: vm, node: 'vmbt-node-ret', planOverrides: { sstBackupNumberOfIterations: '2' } });
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await backup(vm));
    const vmDir = path.dirname(runs[0]!.backupDir);
    const kept = runs.slice(2).map((r) => r.runDate);
    expect(runs[2]!.retention?.deleted).toEqual([runs[0]!.runDate]);
    expect(runs[3]!.retention?.deleted).toEqual([runs[1]!.runDate]);
    expect((await leaves(vm)).map((l) => [l.runDate, l.mode])).toEqual(kept.map((d) => [d, 'finished']));
    expect(await listFiles(vmDir)).toEqual(kept);

    // The next run fails before the node changes anything: nothing is deleted, and the leaf
    // stays at the snapshot go mode with the error (a later night tries the VM again).
    await withDirectory(directory, (dir) =>
      dir.replace(tree.vmBackup(vm), { sstBackupRamDiskLocation: `file://${roots.ramDisk}/missing` }),
    );
    await expect(backup(vm)).rejects.toThrow();
    const after = await leaves(vm);
    expect(after.slice(0, 2).map((l) => l.runDate)).toEqual(kept);
    expect(after).toHaveLength(3);
    expect(after[2]).toMatchObject({ returnValue: 3, state: '0' });
    expect(await listFiles(vmDir)).toEqual(kept);

    // Operators see the same from the command line.
    const listing = await execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, 'backups', vm], {
      reject: false,
    });
    expect(listing.exitCode).toBe(0);
    const lines = listing.stdout.split('\n');
    for (const date of kept) {
      expect(lines.find((l) => l.startsWith(date))).toMatch(
        new RegExp(
          `complete \\(finished, 0\\)\\s+never\\s+[\\d.]+ MiB\\s+${vm}-disk0\\.qcow2\\.${date} ${vm}\\.ldif\\.${date} ${vm}\\.manifest\\.${date}`,
        ),
      );
    }
    expect(lines.find((l) => l.startsWith(after[2]!.runDate))).toMatch(
      /INCOMPLETE \(snapshot, 3\)\s+never\s+0\.0 MiB\s+\(no files\)/,
    );
  });
});
