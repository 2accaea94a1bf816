import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import type { VerifyBackupsResult } from '../../src/workflows/verify-backups';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import {
  backup,
  createVm,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  removeVm,
  roots,
  sameGuestContent,
  temporal,
  virsh,
} from '../support/harness';
import { runWithKills } from '../support/kill-sweep';
import { WorkerProcess } from '../support/worker-process';

const NODE = 'vmbt-node-rk';
const VM = 'vmbt-rk';
const data = { pattern: 0x2e, offset: MiB, length: 2 * MiB };
let result: BackupVmResult;
let scratch: string;
const exports = path.join(roots.backup, 'vmbt-rk-exports');

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-rk-'));
  await fs.rm(exports, { recursive: true, force: true });
  await fs.mkdir(exports, { recursive: true });
  await createVm({ name: VM, node: NODE, disks: 1 });
  await guestWrite(VM, 0, data);
  const worker = await WorkerProcess.start(['node', '--node', NODE]);
  try {
    result = await backup(VM);
  } finally {
    await worker.stop();
  }
}, 120_000);

afterAll(async () => {
  await removeVm(VM).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
  await fs.rm(exports, { recursive: true, force: true });
});

/** While no worker runs: the VM runs on, reading its data. */
const vmUntouched = async () => {
  expect(await virsh.state(VM)).toBe('running');
  expect(await guestReads(VM, 0, data)).toBe(true);
};

describe('reads of a kept backup killed at each of their steps', () => {
  it('an export killed after converting, after comparing and after renaming ends with one copy equal to the backup image, and no .part', async () => {
    const to = path.join(exports, 'vda.qcow2');
    const points = ['export:convert:after', 'export:compare:after', 'export:rename:after'];
    const client = await temporal();
    const outcome = await runWithKills<{ file: string }>({
      node: NODE,
      dir: path.join(scratch, 'export'),
      points,
      start: () =>
        client.workflow.start('exportDisk', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: `export/${VM}`,
          args: [{ vm: VM, backup: result.runDate, disk: 'vda', to, timing: timingFromEnv() }],
        }),
      whileDead: vmUntouched,
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.fired).toEqual([...points].sort());
    expect(outcome.result?.file).toBe(to);
    expect(await fs.readdir(exports)).toEqual(['vda.qcow2']);
    const image = path.join(result.backupDir, `${VM}-disk0.qcow2.${result.runDate}`);
    expect(await sameGuestContent(image, to)).toBe(true);
    await vmUntouched();
  }, 180_000);

  it('a verification killed while hashing and before its report still passes, reads each file once in its last attempt and marks the leaf', async () => {
    const points = ['verify:hash:after', 'verify:report:before'];
    const client = await temporal();
    const outcome = await runWithKills<VerifyBackupsResult>({
      node: NODE,
      dir: path.join(scratch, 'verify'),
      points,
      start: () =>
        client.workflow.start('verifyBackups', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: `verify/${VM}`,
          args: [{ vm: VM, timing: timingFromEnv() }],
        }),
      whileDead: vmUntouched,
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.fired).toEqual([...points].sort());
    const [report] = outcome.result!.reports;
    expect(report).toMatchObject({ outcome: 'passed', problems: [] });
    expect(report!.bytesRead).toBe(report!.bytesExpected);
    expect((await leaves(VM)).find((l) => l.runDate === result.runDate)?.verification?.outcome).toBe(
      'passed',
    );
    expect((await fs.readdir(result.backupDir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  }, 180_000);
});
