import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { SANDBOX_DISK_SIZE } from '../../src/dev/sandbox-vm';
import { run } from '../../src/hypervisor/run';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import { useTestNode } from '../support/lifecycle';
import {
  backingFileOf,
  createVm,
  expectedDisk,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  roots,
  sameGuestContent,
  startBackup,
  virsh,
} from '../support/harness';
import { decodePayload } from '../support/payloads';

// Short limits, so that a frozen libvirtd shows within seconds (the worker inherits them).
process.env['VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS'] = '5';

const NODE = 'vmbt-node-lv';
const node = useTestNode(NODE);

type Beat = { step?: string; waiting?: string; action?: string };

async function libvirtdPid(): Promise<number | undefined> {
  const out = await run('pgrep', ['-x', 'libvirtd']).catch(() => '');
  const pid = Number(out.split('\n')[0]);
  return pid > 0 ? pid : undefined;
}

/** The latest heartbeat details of the pending merge activity, if any. */
async function mergeBeat(handle: WorkflowHandle): Promise<Beat | undefined> {
  for (const a of (await handle.describe()).raw.pendingActivities ?? []) {
    if (a.activityType?.name !== 'merge') continue;
    const p = a.heartbeatDetails?.payloads?.[0];
    return p ? decodePayload<Beat>(p) : undefined;
  }
  return undefined;
}

/** Waits until the run is in its merge and QEMU streams the disk (a block job with progress). */
async function untilPulling(handle: WorkflowHandle, vm: string): Promise<{ cur: number; end: number }> {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    // The server's view (a query would need a control worker, which may be busy).
    const merging = ((await handle.describe()).raw.pendingActivities ?? []).some(
      (a) => a.activityType?.name === 'merge',
    );
    if (merging) {
      const job = await virsh.blockJob(vm, 'vda').catch(() => undefined);
      if (job && job.cur > 0) return job;
    }
    await sleep(100);
  }
  throw new Error(`${vm}: no block pull seen`);
}

/** Collects distinct heartbeat details of the merge for `ms`. */
async function watchBeats(handle: WorkflowHandle, ms: number, seen: Beat[]): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const b = await mergeBeat(handle).catch(() => undefined);
    if (b && JSON.stringify(b) !== JSON.stringify(seen.at(-1))) seen.push(b);
    await sleep(300);
  }
}

/** A running VM with 12 MiB of guest data, merged at 1 MiB/s: a merge of about 12 s. */
async function slowMergeVm(name: string) {
  node.vms.push(name);
  const vm = await createVm({
    name,
    node: NODE,
    disks: 1,
    planOverrides: { sstVirtualizationBandwidthMerge: '1' },
  });
  const a = { pattern: 0x6b, offset: 0, length: 8 * MiB };
  const b = { pattern: 0x7c, offset: 40 * MiB, length: 4 * MiB };
  await guestWrite(name, 0, a);
  await guestWrite(name, 0, b);
  const expected = await expectedDisk(node.scratch(), name, SANDBOX_DISK_SIZE, [a, b]);
  return { vm, writes: [a, b], expected };
}

async function expectFinishedIntact(
  result: BackupVmResult,
  s: Awaited<ReturnType<typeof slowMergeVm>>,
): Promise<void> {
  const name = s.vm.name;
  expect(await virsh.state(name)).toBe('running');
  for (const w of s.writes) expect(await guestReads(name, 0, w)).toBe(true);
  expect(await backingFileOf(s.vm.disks[0]!.file)).toBeUndefined();
  // (The live image is read by the guest above: QEMU still holds some of its metadata in memory.)
  // libvirt, too, knows the pull finished: no backing store left in the retain area.
  expect(await virsh.dumpXml(name)).not.toContain(roots.retain);
  const saved = path.join(result.backupDir, `${path.basename(s.vm.disks[0]!.file)}.${result.runDate}`);
  expect(await sameGuestContent(s.expected, saved)).toBe(true);
  expect((await leaves(name)).find((l) => l.runDate === result.runDate)).toMatchObject({
    mode: 'finished',
    returnValue: 0,
  });
}

describe('a backup outlives an unresponsive or restarted libvirtd', () => {
  it('waits through a libvirtd frozen for 20 s in the middle of the merge, says what it waits for, and finishes', async () => {
    const s = await slowMergeVm('vmbt-lv-freeze');
    const t0 = performance.now();
    const handle = await startBackup(s.vm.name);
    const job = await untilPulling(handle, s.vm.name);
    const tMerge = performance.now();
    const pid = await libvirtdPid();
    expect(pid).toBeDefined();
    const seen: Beat[] = [];
    process.kill(pid!, 'SIGSTOP');
    try {
      await watchBeats(handle, 20_000, seen);
    } finally {
      process.kill(pid!, 'SIGCONT');
    }
    const tResumed = performance.now();
    const result = (await handle.result()) as BackupVmResult;
    const tEnd = performance.now();
    console.log(
      `freeze: pull seen at ${job.cur}/${job.end} after ${Math.round(tMerge - t0)} ms; ` +
        `frozen 20 s; finished ${Math.round(tEnd - tResumed)} ms after SIGCONT; beats ${JSON.stringify(seen)}`,
    );
    expect(seen).toContainEqual(
      expect.objectContaining({
        step: 'merge',
        waiting: expect.stringMatching(/^libvirt did not answer virsh \S+ within 5 s$/),
      }),
    );
    await expectFinishedIntact(result, s);
  });

  it('finishes a merge during which libvirtd is killed and started again', async () => {
    const s = await slowMergeVm('vmbt-lv-restart');
    const t0 = performance.now();
    const handle = await startBackup(s.vm.name);
    const job = await untilPulling(handle, s.vm.name);
    const tMerge = performance.now();
    const pid = await libvirtdPid();
    expect(pid).toBeDefined();
    const seen: Beat[] = [];
    process.kill(pid!, 'SIGKILL');
    try {
      await watchBeats(handle, 5_000, seen);
    } finally {
      if (!(await libvirtdPid())) await run('libvirtd', ['-d']);
    }
    const tRestarted = performance.now();
    // What libvirt makes of the block job QEMU kept running while it was gone.
    for (let i = 0; i < 40 && !(await virsh.state(s.vm.name).catch(() => undefined)); i++) await sleep(250);
    const after = (await virsh.blockJob(s.vm.name, 'vda').catch((e: Error) => e.message)) ?? 'none';
    await watchBeats(handle, 2_000, seen);
    const result = (await handle.result()) as BackupVmResult;
    const tEnd = performance.now();
    console.log(
      `restart: pull seen at ${job.cur}/${job.end} after ${Math.round(tMerge - t0)} ms; libvirtd down 5 s; ` +
        `block job after restart ${JSON.stringify(after)}; finished ${Math.round(tEnd - tRestarted)} ms after restart; ` +
        `beats ${JSON.stringify(seen)}`,
    );
    expect(seen).toContainEqual(
      expect.objectContaining({ step: 'merge', waiting: expect.stringMatching(/^libvirt is not reachable/) }),
    );
    await expectFinishedIntact(result, s);
  });

  it('finishes a merge whose pull QEMU completed while libvirtd was gone', async () => {
    const s = await slowMergeVm('vmbt-lv-done');
    const handle = await startBackup(s.vm.name);
    await untilPulling(handle, s.vm.name);
    const pid = await libvirtdPid();
    expect(pid).toBeDefined();
    const t0 = performance.now();
    let pulled = false;
    process.kill(pid!, 'SIGKILL');
    try {
      // QEMU streams on and rewrites the overlay's header when it is done (at most ~45 s here).
      const until = Date.now() + 45_000;
      while (Date.now() < until && !(pulled = (await backingFileOf(s.vm.disks[0]!.file)) === undefined))
        await sleep(500);
    } finally {
      if (!(await libvirtdPid())) await run('libvirtd', ['-d']);
    }
    const tRestarted = performance.now();
    for (let i = 0; i < 40 && !(await virsh.state(s.vm.name).catch(() => undefined)); i++) await sleep(250);
    const after = (await virsh.blockJob(s.vm.name, 'vda').catch((e: Error) => e.message)) ?? 'none';
    const result = (await handle.result()) as BackupVmResult;
    console.log(
      `pulled while down: ${pulled} after ${Math.round(tRestarted - t0)} ms; block job after restart ` +
        `${JSON.stringify(after)}; finished ${Math.round(performance.now() - tRestarted)} ms after restart`,
    );
    expect(pulled).toBe(true);
    await expectFinishedIntact(result, s);
  });
});
