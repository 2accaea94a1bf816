import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob, type RamBlob } from '../../src/dev/guest-ram';
import { SANDBOX_DISK_SIZE, type SandboxVm } from '../../src/dev/sandbox-vm';
import {
  LIVE_MERGE_ACTIONS,
  LIVE_ROLLBACK_ACTIONS,
  LIVE_SNAPSHOT_ACTIONS,
} from '../../src/domain/steps/live';
import { RETAIN_ACTIONS } from '../../src/domain/steps/retain';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import {
  backingFileOf,
  createVm,
  expectedDisk,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  removeVm,
  roots,
  sameGuestContent,
  startBackup,
  tree_of,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { actionBoundaries, expectedOnPath, runWithKills } from '../support/kill-sweep';

const SWEEP_TIMEOUT = 900_000;
let scratch: string;
let blob: RamBlob;
const vms: string[] = [];

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-lsweep-'));
  blob = await ensureRamBlob('sweep-48m', 48 * MiB);
});

afterAll(async () => {
  for (const vm of vms) await removeVm(vm).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

/** A live-mode VM with two disks whose RAM holds the blob (loaded from blank loaders: only a memory file brings it back). */
async function liveVm(name: string, node: string, running = true) {
  vms.push(name);
  const vm = await createVm({ name, node, disks: 2, memoryMiB: 128, ramData: blob, mode: 'live' });
  const written: GuestWrite[][] = [[], []];
  if (running) {
    await blankRamLoaders(name, blob);
    for (const disk of [0, 1])
      await guestWrite(
        name,
        disk,
        { pattern: 0x50 + disk, offset: (2 + disk) * MiB, length: MiB },
        written[disk],
      );
  } else {
    for (const disk of [0, 1])
      await guestWrite(name, disk, { pattern: 0x60 + disk, offset: disk * MiB, length: MiB }, written[disk]);
    await virsh.destroy(name);
  }
  return { vm, written };
}

/** While no worker runs: every image is at its live path (live mode never moves one). */
function imagesInPlace(vm: SandboxVm) {
  return async () => {
    for (const d of vm.disks) expect(await fs.stat(d.file).catch(() => undefined), d.file).toBeDefined();
  };
}

/** The VM as it was: its state, its RAM (when running), its data, on its own images, nothing of the run left. */
async function expectAsBefore(vm: SandboxVm, written: GuestWrite[][], running: boolean) {
  expect(await virsh.state(vm.name)).toBe(running ? 'running' : 'shut off');
  expect(await virsh.diskSources(vm.name)).toEqual(new Map(vm.disks.map((d) => [d.target, d.file])));
  if (running) expect(await blobRangeSha256(virsh, vm.name, blob)).toBe(blob.sha256);
  for (const [i, d] of vm.disks.entries()) {
    expect(await backingFileOf(d.file)).toBeUndefined();
    const dir = await fs.readdir(path.dirname(d.file));
    expect(dir.filter((f) => f.startsWith(`${path.basename(d.file)}.`))).toEqual([]);
    if (running) for (const w of written[i]!) expect(await guestReads(vm.name, i, w)).toBe(true);
  }
  expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(vm.name));
  expect(await tree_of(roots.ramDisk)).not.toContainEqual(expect.stringContaining(vm.name));
}

async function expectBackupOf(vm: SandboxVm, written: GuestWrite[][], result: BackupVmResult, label: string) {
  expect(result.mode).toBe('live');
  for (const [i, d] of vm.disks.entries()) {
    const expected = await expectedDisk(scratch, `${label}-${d.target}`, SANDBOX_DISK_SIZE, written[i]!);
    expect(
      await sameGuestContent(
        expected,
        path.join(result.backupDir, `${path.basename(d.file)}.${result.runDate}`),
      ),
    ).toBe(true);
  }
  expect((await leaves(vm.name)).find((l) => l.runDate === result.runDate)).toMatchObject({
    mode: 'finished',
    returnValue: 0,
  });
}

const backupPoints = [
  ...actionBoundaries('snapshot', LIVE_SNAPSHOT_ACTIONS),
  ...actionBoundaries('merge', LIVE_MERGE_ACTIONS),
  ...actionBoundaries('retain', RETAIN_ACTIONS),
];

describe.concurrent('live mode: a node worker killed at every action boundary', () => {
  // Two halves on two VMs at once: the same boundaries, half the wall time.
  const snapshotPoints = actionBoundaries('snapshot', LIVE_SNAPSHOT_ACTIONS);
  const laterPoints = [
    ...actionBoundaries('merge', LIVE_MERGE_ACTIONS),
    ...actionBoundaries('retain', RETAIN_ACTIONS),
  ];
  const runningOffPath = {
    'snapshot:discard-overlay': 'only after libvirt refused a snapshot',
    'snapshot:remove-state': 'only after libvirt refused a snapshot',
    'snapshot:pause': 'only for a memory copy past its bound',
    'snapshot:resume': 'only for a VM left paused',
    'snapshot:fall-back': 'only after libvirt refused a snapshot',
    'snapshot:write-placeholder': 'only for a VM that is shut off',
    'merge:start-paused': 'only for a VM that is shut off',
    'merge:stop-vm': 'only for a VM the merge started',
    'retain:remove-source': 'only when copying to another filesystem',
  };
  it.each([
    ['its snapshot', 'a', snapshotPoints],
    ['its merge and retain', 'b', laterPoints],
  ] as const)(
    'at every boundary of %s, backing up a running VM: every run completes, the VM runs on its images with its RAM and data, the backup equals the guest at the instant',
    async (_, tag, points) => {
      const node = `vmbt-node-lk1${tag}`;
      const { vm, written } = await liveVm(`vmbt-lsweep-run${tag}`, node);
      const out = await runWithKills<BackupVmResult>({
        node,
        dir: path.join(scratch, `run-${tag}`),
        points: [...points],
        start: () => startBackup(vm.name),
        whileDead: imagesInPlace(vm),
      });
      expect(out.error).toBeUndefined();
      expect(out.fired).toEqual(expectedOnPath([...points], runningOffPath));
      expect(out.kills).toBe(out.fired.length);
      await expectAsBefore(vm, written, true);
      await expectBackupOf(vm, written, out.result!, `run-${tag}`);
    },
    SWEEP_TIMEOUT,
  );

  it(
    'of a backup of a shut-off VM: it stays off, its images untouched, the backup equals its disks',
    async () => {
      const node = 'vmbt-node-lk2';
      const { vm, written } = await liveVm('vmbt-lsweep-off', node, false);
      const out = await runWithKills<BackupVmResult>({
        node,
        dir: path.join(scratch, 'off'),
        points: backupPoints,
        start: () => startBackup(vm.name),
        whileDead: imagesInPlace(vm),
      });
      expect(out.error).toBeUndefined();
      const onlyRunning = 'only for a running VM';
      expect(out.fired).toEqual(
        expectedOnPath(backupPoints, {
          'snapshot:discard-overlay': onlyRunning,
          'snapshot:remove-state': onlyRunning,
          'snapshot:live-snapshot': onlyRunning,
          'snapshot:pause': onlyRunning,
          'snapshot:resume': onlyRunning,
          'snapshot:fall-back': onlyRunning,
          'snapshot:retain-state': onlyRunning,
          'merge:start-paused': 'no disk is on an overlay',
          'merge:start-commit': 'no disk is on an overlay',
          'merge:pivot': 'no disk is on an overlay',
          'merge:discard-overlay': 'no disk is on an overlay',
          'merge:stop-vm': 'no disk is on an overlay',
          'retain:remove-source': 'only when copying to another filesystem',
        }),
      );
      await expectAsBefore(vm, written, false);
      await expectBackupOf(vm, written, out.result!, 'off');
    },
    SWEEP_TIMEOUT,
  );

  const rollbackPoints = actionBoundaries('rollback', LIVE_ROLLBACK_ACTIONS);

  it(
    'of the rollback after the copy of the frozen images failed: the VM is committed back onto its images with its RAM and data, nothing is left behind',
    async () => {
      const node = 'vmbt-node-lk3';
      const { vm, written } = await liveVm('vmbt-lsweep-rb', node);
      const out = await runWithKills<BackupVmResult>({
        node,
        dir: path.join(scratch, 'rollback'),
        points: rollbackPoints,
        env: { VMBACKUP_FAULTS: 'snapshot:copy-disk:fault' },
        start: () => startBackup(vm.name),
        whileDead: imagesInPlace(vm),
      });
      expect(String(out.error), JSON.stringify(out.result)).toMatch(/failed/);
      expect(out.fired).toEqual(
        expectedOnPath(rollbackPoints, {
          'rollback:resume': 'only for a VM left paused',
          'rollback:start-paused': 'only for a VM that is shut off',
          'rollback:stop-vm': 'only for a VM the rollback started',
        }),
      );
      await expectAsBefore(vm, written, true);
      expect((await leaves(vm.name)).at(-1)?.mode).not.toBe('finished');
    },
    SWEEP_TIMEOUT,
  );

  it(
    'in the middle of the memory copy of a VM with 768 MiB of data: the retry waits for libvirt’s job instead of starting a second snapshot',
    async () => {
      const node = 'vmbt-node-lk4';
      const big = await ensureRamBlob('vmbt-768m', 768 * MiB);
      vms.push('vmbt-lsweep-mid');
      const vm = await createVm({
        name: 'vmbt-lsweep-mid',
        node,
        disks: 1,
        memoryMiB: 1024,
        ramData: big,
        mode: 'live',
      });
      await blankRamLoaders(vm.name, big);
      const written: GuestWrite[][] = [[]];
      await guestWrite(vm.name, 0, { pattern: 0x71, offset: 0, length: MiB }, written[0]);
      // Past the lifecycle watch's settle time, inside libvirt's memory copy.
      const points = ['snapshot:live-snapshot:during'];
      const out = await runWithKills<BackupVmResult>({
        node,
        dir: path.join(scratch, 'mid'),
        points,
        env: { VMBACKUP_FAILPOINT_DELAY_MS: '800' },
        start: () => startBackup(vm.name),
        whileDead: imagesInPlace(vm),
      });
      expect(out.error).toBeUndefined();
      expect(out.fired).toEqual(points);
      expect(out.result!.mode).toBe('live');
      expect(await virsh.state(vm.name)).toBe('running');
      expect(await blobRangeSha256(virsh, vm.name, big)).toBe(big.sha256);
      expect(await virsh.diskSources(vm.name)).toEqual(new Map([[vm.disks[0]!.target, vm.disks[0]!.file]]));
      expect(await backingFileOf(vm.disks[0]!.file)).toBeUndefined();
      await expectBackupOf(vm, written, out.result!, 'mid');
    },
    SWEEP_TIMEOUT,
  );
});
