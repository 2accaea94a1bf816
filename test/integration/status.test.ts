import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import type { VmStatus } from '../../src/domain/status';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import { repoRoot } from '../support/dev-env';
import { backup, createVm, removeVm, temporal } from '../support/harness';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmbt-node-status';
const GONE = 'vmbt-node-st-gone';
const vms = {
  fine: 'vmbt-st-fine',
  failed: 'vmbt-st-failed',
  excluded: 'vmbt-st-excluded',
  never: 'vmbt-st-never',
  gone: 'vmbt-st-gone',
};
const node = useTestNode(NODE, { VMBACKUP_FAULTS: `snapshot:restore-vm:fault@${vms.failed}` });
node.vms.push(vms.fine, vms.failed, vms.excluded, vms.never);
const SCHEDULE = `vmbackup-plan-vm-${vms.fine}`;
afterAll(async () => {
  await removeVm(vms.gone).catch(() => undefined);
  await (
    await temporal()
  ).schedule
    .getHandle(SCHEDULE)
    .delete()
    .catch(() => undefined);
});

const cli = (...args: string[]) =>
  execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, ...args], { reject: false });

async function status(nodeName: string): Promise<{ exitCode: number; ok: boolean; vms: VmStatus[] }> {
  const r = await cli('status', '--node', nodeName, '--json');
  const parsed = JSON.parse(r.stdout) as { ok: boolean; vms: VmStatus[] };
  return { exitCode: r.exitCode ?? -1, ...parsed };
}

describe('vmbackup status', () => {
  it('tells fine, failed, excluded, never backed up and worker-less VMs apart, in lines and JSON, and exits 1 while any needs attention', async () => {
    await createVm({ name: vms.fine, node: NODE });
    await createVm({ name: vms.failed, node: NODE });
    await createVm({ name: vms.excluded, node: NODE, planOverrides: { sstBackupExcludeFromBackup: 'TRUE' } });
    await createVm({ name: vms.never, node: NODE });
    await createVm({ name: vms.gone, node: GONE });
    const good = await backup(vms.fine);
    await expect(backup(vms.failed)).rejects.toThrow();
    // The fine VM's schedule (its plan has cron fields), far enough away never to fire here.
    const client = await temporal();
    await client.schedule
      .getHandle(SCHEDULE)
      .delete()
      .catch(() => undefined);
    await client.schedule.create({
      scheduleId: SCHEDULE,
      spec: { cronExpressions: ['0 3 1 1 *'] },
      action: {
        type: 'startWorkflow',
        workflowType: 'nightlyBackup',
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: `nightly/${SCHEDULE}`,
        args: [{ plan: { level: 'vm', name: vms.fine }, timing: timingFromEnv() }],
      },
    });

    const s = await status(NODE);
    expect(s.exitCode).toBe(1);
    expect(s.ok).toBe(false);
    const by = new Map(s.vms.map((v) => [v.vm, v]));
    expect([...by.keys()]).toEqual([vms.excluded, vms.failed, vms.fine, vms.never]);
    expect(by.get(vms.fine)).toMatchObject({
      node: NODE,
      plan: { level: 'vm', mode: 'save' },
      schedule: SCHEDULE,
      lastBackup: { runDate: good.runDate },
      lastRun: { runDate: good.runDate, outcome: 'finished' },
      skipped: null,
      verification: null,
      nodeWorker: true,
      ok: true,
      reasons: [],
    });
    expect(by.get(vms.fine)!.nextRun).toMatch(/^\d{4}-01-01T03:00:00\.000Z$/);
    expect(by.get(vms.failed)).toMatchObject({ ok: false, lastBackup: null, lastRun: { outcome: 'failed' } });
    expect(by.get(vms.failed)!.reasons).toEqual(
      expect.arrayContaining([
        'never backed up',
        expect.stringMatching(/^last run \d{8}T\d{6}Z failed/),
        expect.stringMatching(/^skipped by the nightly run: last backup .* did not finish cleanly/),
      ]),
    );
    expect(by.get(vms.excluded)).toMatchObject({
      ok: true,
      schedule: null,
      skipped: 'excluded from backup (sstBackupExcludeFromBackup: TRUE)',
    });
    expect(by.get(vms.never)).toMatchObject({ ok: false, reasons: ['never backed up'], lastRun: null });

    const gone = await status(GONE);
    expect(gone.exitCode).toBe(1);
    expect(gone.vms).toHaveLength(1);
    expect(gone.vms[0]).toMatchObject({ vm: vms.gone, nodeWorker: false, ok: false });
    expect(gone.vms[0]!.reasons).toContain(`no worker on node ${GONE}`);

    // The lines say the same for a person.
    const text = await cli('status', '--node', NODE);
    expect(text.exitCode).toBe(1);
    const line = (vm: string) => text.stdout.split('\n').find((l) => l.startsWith(`${vm} `)) ?? '';
    expect(line(vms.fine)).toMatch(
      new RegExp(`${good.runDate} \\(\\d+(\\.\\d)? h\\)\\s+finished\\s+never\\s+\\d{4}-01-01T03:00Z\\s+OK$`),
    );
    expect(line(vms.never)).toMatch(/FAIL: never backed up$/);
    expect(line(vms.failed)).toMatch(/FAIL: never backed up; last run/);
    expect(text.stdout).toMatch(/2 of 4 VMs need attention$/);
  }, 240_000);

  it('exits 0 once every VM that should be backed up is fine', async () => {
    await removeVm(vms.failed);
    await removeVm(vms.never);
    const s = await status(NODE);
    expect(s.vms.map((v) => v.vm)).toEqual([vms.excluded, vms.fine]);
    expect(s).toMatchObject({ exitCode: 0, ok: true });
    const text = await cli('status', '--node', NODE);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/all 2 VMs are fine$/);
  }, 120_000);

  it('refuses a bad node name without touching anything', async () => {
    const r = await cli('status', '--node', 'bad/node');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/invalid node name/);
  });
});
