import { existsSync, mkdirSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drillResultName, scratchName, type DrillReport } from '../../src/activities/node/drill';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob } from '../../src/dev/guest-ram';
import { DRILL_ACTIONS } from '../../src/domain/steps/drill';
import { drillWorkflowId } from '../../src/workflows/drill-backup';
import {
  backup,
  createVm,
  guestReads,
  guestWrite,
  MiB,
  removeVm,
  roots,
  temporal,
  tree_of,
  virsh,
} from '../support/harness';
import { actionBoundaries, expectedOnPath, runWithKills } from '../support/kill-sweep';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmdr-node-d';
const barrier = path.join(os.tmpdir(), `vmdr-drill-barrier-${process.pid}`);
mkdirSync(barrier, { recursive: true });
const PAUSE = 'drill:destroy-scratch:before';
// The first drill of this file waits before its scratch VM is destroyed, for the test to look at it.
const names = useTestNode(NODE, { VMBACKUP_PAUSEPOINTS: PAUSE, VMBACKUP_FAILPOINT_DIR: barrier }).vms;
const A = { pattern: 0xa7, offset: 0, length: 2 * MiB };
const B = { pattern: 0xb8, offset: 0, length: 2 * MiB };

afterAll(async () => {
  await fs.rm(barrier, { recursive: true, force: true });
});

function startDrill(vm: string, backupDate?: string) {
  return temporal().then((c) =>
    c.workflow.start('drillBackup', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: drillWorkflowId(vm),
      args: [{ vm, backup: backupDate, timing: timingFromEnv() }],
    }),
  );
}

async function drill(vm: string, backupDate?: string): Promise<DrillReport> {
  return (await (await startDrill(vm, backupDate)).result()) as DrillReport;
}

/** Nothing of the drill remains: no scratch domain, no scratch directory or file. */
async function nothingLeft(vm: string, runDate: string) {
  expect(await virsh.state(scratchName(vm, runDate))).toBeUndefined();
  expect(existsSync(path.join(roots.retain, 'drills', vm))).toBe(false);
  expect((await tree_of(path.join(roots.retain, 'drills'))).filter((f) => f.includes(vm))).toEqual([]);
  expect((await virsh.domainNames()).filter((n) => n.startsWith(`${vm}-drill`))).toEqual([]);
}

async function resultFile(report: DrillReport) {
  const file = report.file!;
  expect(path.basename(file)).toBe(drillResultName(report.vm, report.runDate));
  expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
  return JSON.parse(await fs.readFile(file, 'utf8')) as DrillReport;
}

describe('restore drill', () => {
  it('drills a running VM with RAM data from its saved state: the scratch VM reads the backup, the live VM is untouched', async () => {
    const vm = 'vmdr-drill-ram';
    names.push(vm);
    const blob = await ensureRamBlob('vmdr-256m', 256 * MiB);
    await createVm({ name: vm, node: NODE, disks: 1, memoryMiB: 320, ramData: blob });
    await blankRamLoaders(vm, blob);
    await guestWrite(vm, 0, A);
    const done = await backup(vm);
    await guestWrite(vm, 0, B);
    const liveUuid = (await virsh.dumpXml(vm)).match(/<uuid>(.*)<\/uuid>/)?.[1];
    const handle = await startDrill(vm);
    const reached = path.join(barrier, `${PAUSE.replace(/[^\w.-]+/g, '_')}.reached`);
    for (let i = 0; i < 600 && !existsSync(reached); i++) await sleep(500);
    const scratch = scratchName(vm, done.runDate);
    expect(await virsh.state(scratch)).toBe('running');
    // The scratch VM has the backup's guest: its disk reads A, its RAM holds the blob.
    expect(await guestReads(scratch, 0, A)).toBe(true);
    expect(await blobRangeSha256(virsh, scratch, blob)).toBe(blob.sha256);
    expect((await virsh.dumpXml(scratch)).match(/<uuid>(.*)<\/uuid>/)?.[1]).not.toBe(liveUuid);
    expect(await virsh.diskSources(scratch)).toEqual(
      new Map([
        ['vda', expect.stringContaining(path.join(roots.retain, 'drills', vm, done.runDate)) as string],
      ]),
    );
    await fs.writeFile(path.join(barrier, `${PAUSE.replace(/[^\w.-]+/g, '_')}.go`), '');
    const report = (await handle.result()) as DrillReport;
    expect(report).toMatchObject({ outcome: 'passed', from: 'state', problems: [], scratch });
    expect(await resultFile(report)).toMatchObject({ outcome: 'passed', drillId: report.drillId });
    console.log(
      `drill of ${vm} (256 MiB RAM data): ${report.durationMs} ms including the pause for the checks`,
    );
    await nothingLeft(vm, done.runDate);
    // The live VM runs on, with what it wrote after the backup.
    expect(await virsh.state(vm)).toBe('running');
    expect(await guestReads(vm, 0, B)).toBe(true);
    expect((await virsh.dumpXml(vm)).match(/<uuid>(.*)<\/uuid>/)?.[1]).toBe(liveUuid);
    // Unpaused, the same drill again takes what it really takes.
    const again = await drill(vm);
    expect(again.outcome).toBe('passed');
    console.log(`drill of ${vm} (256 MiB RAM data), unpaused: ${again.durationMs} ms`);
    await nothingLeft(vm, done.runDate);
    await removeVm(vm);
  }, 600_000);

  it('drills a shut-down VM by booting the scratch VM, and leaves nothing behind', async () => {
    const vm = 'vmdr-drill-off';
    names.push(vm);
    await createVm({ name: vm, node: NODE, disks: 2, running: false });
    const done = await backup(vm);
    const report = await drill(vm, done.runDate);
    expect(report).toMatchObject({ outcome: 'passed', from: 'boot', problems: [], runDate: done.runDate });
    await nothingLeft(vm, done.runDate);
    expect(await virsh.state(vm)).toBe('shut off');
  }, 300_000);

  it('reports a drill of a corrupted backup image as failed, naming the image, and still cleans up', async () => {
    const vm = 'vmdr-drill-bad';
    names.push(vm);
    const created = await createVm({ name: vm, node: NODE, disks: 1, running: false });
    const done = await backup(vm);
    const image = path.join(done.backupDir!, `${path.basename(created.disks[0]!.file)}.${done.runDate}`);
    const handle = await fs.open(image, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 100);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 100);
    await handle.close();
    const report = await drill(vm);
    expect(report.outcome).toBe('failed');
    expect(report.problems.join('\n')).toContain(path.basename(image));
    expect((await resultFile(report)).outcome).toBe('failed');
    await nothingLeft(vm, done.runDate);
  }, 300_000);

  it('refuses an unknown VM and a backup that does not exist, changing nothing', async () => {
    await expect(drill('vmdr-no-such-vm')).rejects.toThrow();
    const vm = 'vmdr-drill-off';
    await expect(drill(vm, '20000101T000000Z')).rejects.toThrow();
    await expect(drill('bad name')).rejects.toThrow();
  }, 120_000);
});

describe('restore drill, killed', () => {
  const KNODE = 'vmdr-node-k';
  const vms: string[] = [];
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmdr-kill-'));
  });
  afterAll(async () => {
    for (const vm of vms) await removeVm(vm).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('survives a kill of the node worker at every boundary of every drill action of a running VM', async () => {
    const vm = 'vmdr-drill-kill';
    vms.push(vm);
    const points = actionBoundaries('drill', DRILL_ACTIONS);
    let runDate = '';
    const outcome = await runWithKills<DrillReport>({
      node: KNODE,
      dir,
      points,
      start: async () => {
        await createVm({ name: vm, node: KNODE, disks: 1 });
        await guestWrite(vm, 0, A);
        runDate = (await backup(vm)).runDate;
        await guestWrite(vm, 0, B);
        return startDrill(vm);
      },
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.result).toMatchObject({ outcome: 'passed', from: 'state', problems: [] });
    expect(outcome.fired).toEqual(
      expectedOnPath(points, { 'drill:ensure-network': 'sandbox VMs have no network interface' }),
    );
    console.log(`drill killed ${outcome.kills} times: passed in ${outcome.result!.durationMs} ms`);
    await nothingLeft(vm, runDate);
    expect(await virsh.state(vm)).toBe('running');
    expect(await guestReads(vm, 0, B)).toBe(true);
  }, 600_000);
});
