import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob, type RamBlob } from '../../src/dev/guest-ram';
import { SANDBOX_DISK_SIZE, type SandboxVm } from '../../src/dev/sandbox-vm';
import { MERGE_ACTIONS } from '../../src/domain/steps/merge';
import { RETAIN_ACTIONS } from '../../src/domain/steps/retain';
import { RESTORE_ACTIONS, UNRETAIN_ACTIONS } from '../../src/domain/steps/restore';
import { ROLLBACK_ACTIONS, SNAPSHOT_ACTIONS } from '../../src/domain/steps/snapshot';
import { decideUpdate } from '../../src/workflows/messages';
import type { RestoreVmResult } from '../../src/workflows/restore-vm';
import { run } from '../../src/hypervisor/run';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import {
  backingFileOf,
  backup,
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
import { startRestore, waitForStage } from '../support/restore';
import { WorkerProcess } from '../support/worker-process';

// The scenarios wait mostly for heartbeat timeouts: they run side by side, each on a node of its own.
const SWEEP_TIMEOUT = 900_000;
let scratch: string;
let blob: RamBlob;
const vms: string[] = [];

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-'));
  blob = await ensureRamBlob('sweep-48m', 48 * MiB);
});

afterAll(async () => {
  for (const vm of vms) await removeVm(vm).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

/** A running VM whose RAM holds the blob — loaded from blank loaders after boot, so RAM can only come back from its saved state. */
async function vmWithData(
  name: string,
  node: string,
  spec: { running?: boolean; planOverrides?: Record<string, string> } = {},
) {
  vms.push(name);
  const vm = await createVm({ name, node, disks: 2, memoryMiB: 128, ramData: blob, ...spec });
  if (spec.running !== false) await blankRamLoaders(name, blob);
  const written: GuestWrite[][] = [[], []];
  if (spec.running !== false) {
    for (const disk of [0, 1])
      await guestWrite(
        name,
        disk,
        { pattern: 0x30 + disk, offset: (1 + disk) * MiB, length: MiB },
        written[disk],
      );
  }
  return { vm, written };
}

/** While no worker runs: every disk is somewhere, live or retained, never lost. */
function everyDiskSomewhere(vm: SandboxVm) {
  return async () => {
    const retained = await tree_of(roots.retain);
    for (const d of vm.disks) {
      const live = await fs.stat(d.file).catch(() => undefined);
      expect(
        live !== undefined || retained.some((f) => path.basename(f).startsWith(`${path.basename(d.file)}.`)),
      ).toBe(true);
    }
  };
}

async function expectBackupOf(vm: SandboxVm, written: GuestWrite[][], result: BackupVmResult, label: string) {
  for (const [i, d] of vm.disks.entries()) {
    expect(await backingFileOf(d.file)).toBeUndefined();
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
  expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(vm.name));
}

async function expectUntouched(vm: SandboxVm, written: GuestWrite[][]) {
  expect(await virsh.state(vm.name)).toBe('running');
  expect(await blobRangeSha256(virsh, vm.name, blob)).toBe(blob.sha256);
  for (const [i, d] of vm.disks.entries()) {
    for (const w of written[i]!) expect(await guestReads(vm.name, i, w)).toBe(true);
    expect(await backingFileOf(d.file)).toBeUndefined();
    const dir = await fs.readdir(path.dirname(d.file));
    expect(dir.filter((f) => f.startsWith(path.basename(d.file)) && f !== path.basename(d.file))).toEqual([]);
  }
  expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(vm.name));
  expect(await tree_of(roots.ramDisk)).not.toContainEqual(expect.stringContaining(vm.name));
}

const backupPoints = [
  ...actionBoundaries('snapshot', SNAPSHOT_ACTIONS),
  ...actionBoundaries('merge', MERGE_ACTIONS),
  ...actionBoundaries('retain', RETAIN_ACTIONS),
];

describe.concurrent('a node worker killed at every action boundary', () => {
  /** A backup while the worker dies at every boundary on its path; `offPath`: what it cannot reach, and why. */
  async function sweepBackup(vm: SandboxVm, node: string, offPath: Record<string, string>) {
    const out = await runWithKills<BackupVmResult>({
      node,
      dir: path.join(scratch, vm.name),
      points: backupPoints,
      start: () => startBackup(vm.name),
      whileDead: everyDiskSomewhere(vm),
    });
    expect(out.error).toBeUndefined();
    expect(out.fired).toEqual(expectedOnPath(backupPoints, offPath));
    expect(out.kills).toBe(out.fired.length);
    return out;
  }

  describe('of a backup', () => {
    it(
      'of a running VM: every run completes, the VM runs with its RAM and disks, the backup equals the guest at the snapshot',
      async () => {
        const { vm, written } = await vmWithData('vmbt-sweep-run', 'vmbt-node-k1');
        const out = await sweepBackup(vm, 'vmbt-node-k1', {
          'snapshot:write-placeholder': 'only for a VM that is shut off',
          'merge:start-paused': 'only for a VM that is shut off',
          'merge:stop-vm': 'only for a VM the merge started',
          'retain:remove-source': 'only when copying to another filesystem',
        });
        await expectUntouched(vm, written);
        await expectBackupOf(vm, written, out.result!, 'running');
      },
      SWEEP_TIMEOUT,
    );

    it(
      'of a shut-off VM copied to another filesystem: it stays off and its backup equals its disks',
      async () => {
        const otherFs = path.join(roots.backup, 'sweep-fs');
        await fs.mkdir(otherFs, { recursive: true });
        await run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', otherFs]);
        try {
          const { vm, written } = await vmWithData('vmbt-sweep-off', 'vmbt-node-k2', {
            running: false,
            planOverrides: { sstBackupRootDirectory: `file://${otherFs}` },
          });
          const out = await sweepBackup(vm, 'vmbt-node-k2', {
            'snapshot:save-state': 'only for a running VM',
            'snapshot:restore-vm': 'only for a running VM',
            'snapshot:retain-state': 'only for a running VM',
          });
          expect(await virsh.state(vm.name)).toBe('shut off');
          await expectBackupOf(vm, written, out.result!, 'off');
          expect((await fs.readdir(out.result!.backupDir)).filter((f) => f.endsWith('.part'))).toEqual([]);
        } finally {
          await run('umount', [otherFs]).catch(() => undefined);
        }
      },
      SWEEP_TIMEOUT,
    );
  });

  const rollbackPoints = actionBoundaries('rollback', ROLLBACK_ACTIONS);

  describe('of a rollback', () => {
    it.each([
      [
        'snapshot:restore-vm:fault',
        'every disk swapped',
        {
          'rollback:discard-prepared': 'every overlay was put in place',
          'rollback:start-vm': 'only for a VM someone else stopped without its state',
        },
      ],
      [
        'snapshot:place-overlay:fault',
        'one disk moved, none swapped',
        {
          'rollback:discard-overlay': 'no overlay was put in place',
          'rollback:start-vm': 'only for a VM someone else stopped without its state',
        },
      ],
    ] as const)(
      'after a failure at %s (%s): the VM runs on its own disks with its RAM, nothing is left behind',
      async (fault, _, offPath) => {
        const tag = fault.includes('restore') ? 'r' : 'p';
        const node = `vmbt-node-k3${tag}`;
        const { vm, written } = await vmWithData(`vmbt-sweep-rb${tag}`, node);
        const out = await runWithKills<BackupVmResult>({
          node,
          dir: path.join(scratch, fault.replace(/:/g, '_')),
          points: rollbackPoints,
          env: { VMBACKUP_FAULTS: fault },
          start: () => startBackup(vm.name),
          whileDead: everyDiskSomewhere(vm),
        });
        expect(String(out.error)).toMatch(/failed/);
        expect(out.fired).toEqual(expectedOnPath(rollbackPoints, offPath));
        await expectUntouched(vm, written);
        const leaf = (await leaves(vm.name)).at(-1);
        expect(leaf?.mode).not.toBe('finished');
      },
      SWEEP_TIMEOUT,
    );
  });

  const restorePoints = [
    ...actionBoundaries('unretain-small', UNRETAIN_ACTIONS),
    ...actionBoundaries('unretain-large', UNRETAIN_ACTIONS),
    ...actionBoundaries('restore', RESTORE_ACTIONS),
  ];

  describe('of a restore', () => {
    it(
      'of a running VM: every run completes, the VM runs from its saved state with the RAM and disks of the backup',
      async () => {
        const node = 'vmbt-node-k4';
        const { vm, written } = await vmWithData('vmbt-sweep-rs', node);
        const worker = await WorkerProcess.start(['node', '--node', node]);
        const taken = await backup(vm.name).finally(() => worker.stop());
        // After the backup the guest writes over its data: the restore must bring back the old.
        const later = { pattern: 0x77, offset: MiB, length: MiB };
        await guestWrite(vm.name, 0, later);
        await blankRamLoaders(vm.name, blob);
        const decided: Promise<unknown>[] = [];
        const out = await runWithKills<RestoreVmResult>({
          node,
          dir: path.join(scratch, 'restore'),
          points: restorePoints,
          start: async () => {
            // Its first step is a probe with a bounded wait for the node: a restarting worker needs longer.
            const handle = await startRestore(vm.name, { backup: taken.runDate, nodeWaitSeconds: 60 });
            decided.push(
              waitForStage(handle, ['awaiting-decision']).then((status) =>
                handle.executeUpdate(decideUpdate, {
                  args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
                }),
              ),
            );
            return handle;
          },
          whileDead: async () => {
            // Each disk is live, kept aside or waiting in the retain directory.
            for (const d of vm.disks) {
              const dir = await fs.readdir(path.dirname(d.file));
              const retained = await tree_of(roots.retain);
              expect(
                dir.some((f) => f.startsWith(path.basename(d.file))) ||
                  retained.some((f) => path.basename(f).startsWith(`${path.basename(d.file)}.`)),
              ).toBe(true);
            }
          },
        });
        await Promise.all(decided);
        expect(out.error).toBeUndefined();
        expect(out.result).toMatchObject({ outcome: 'restored', state: 'running' });
        expect(out.fired).toEqual(
          expectedOnPath(restorePoints, {
            'unretain-small:clear-marker': 'only after an earlier restore of the same backup',
            'unretain-large:clear-marker': 'only after an earlier restore of the same backup',
            'unretain-large:create-retain-dir': 'the small files created it',
            'restore:start-vm': 'only for a VM that was off at backup time',
          }),
        );
        expect(await guestReads(vm.name, 0, later)).toBe(false);
        await expectUntouched(vm, written);
      },
      SWEEP_TIMEOUT,
    );
  });
});
