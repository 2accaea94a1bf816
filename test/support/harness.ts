import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectClient } from '../../src/temporal/connect';
import {
  CONTROL_TASK_QUEUE,
  directoryConfig,
  nodeConfig,
  temporalConfig,
  timingFromEnv,
} from '../../src/config';
import { adminDirectoryConfig } from '../../src/dev/admin-directory';
import { GuestIo } from '../../src/dev/guest-io';
import {
  createSandboxVm,
  defaultPlan,
  removeSandboxVm,
  type SandboxVm,
  type SandboxVmSpec,
} from '../../src/dev/sandbox-vm';
import { withDirectory } from '../../src/directory/connection';
import { StoneyTree } from '../../src/directory/dn';
import { readLeaves, type LeafState } from '../../src/directory/run-leaf';
import { formatRunDate } from '../../src/domain/names';
import { imageInfo } from '../../src/hypervisor/qemu-img';
import { run } from '../../src/hypervisor/run';
import { Virsh } from '../../src/hypervisor/virsh';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import type { BackupVmsResult } from '../../src/workflows/backup-vms';
import { vmWorkflowId } from '../../src/workflows/ids';
import { loadDevEnv } from './dev-env';

loadDevEnv();
// Short waits so that a missing node or a killed worker shows within seconds.
process.env['VMBACKUP_NODE_WAIT_SECONDS'] ??= '5';
process.env['VMBACKUP_HEARTBEAT_SECONDS'] ??= '3';
// A killed worker's step is retried within a second or two, however often it was killed.
process.env['VMBACKUP_RETRY_MAX_SECONDS'] ??= '2';

export const virsh = new Virsh(process.env['LIBVIRT_URI']!);
export const guest = new GuestIo(virsh);
/** The root DN: fixtures create VMs and plans, which the control worker's identity may not. */
export const directory = adminDirectoryConfig();
/** What the control worker binds as (its restricted identity over TLS in the dev services). */
export const controlDirectory = directoryConfig();
export const node = nodeConfig();
export const tree = new StoneyTree(directory.baseDn);
export const roots = {
  retain: process.env['VMBACKUP_RETAIN_ROOT']!,
  backup: process.env['VMBACKUP_BACKUP_ROOT']!,
  ramDisk: process.env['VMBACKUP_RAMDISK']!,
};
const deps = { virsh, directory, node };

const MiB = 1024 * 1024;
export { MiB };

export async function createVm(
  spec: Omit<SandboxVmSpec, 'retainRoot' | 'backupRoot'> & {
    planOverrides?: Record<string, string | undefined>;
    /**
     * The plan's backup mode; `unset` leaves the attribute out (live). The suites written
     * for save mode's mechanics default to it.
     */
    mode?: 'live' | 'save' | 'unset' | undefined;
  },
): Promise<SandboxVm> {
  const base = { retainRoot: roots.retain, backupRoot: roots.backup, ramDisk: roots.ramDisk };
  // Each test starts from a VM without history: no run of an interrupted test, no earlier
  // backups or retained files.
  await (
    await temporal()
  ).workflow
    .getHandle(vmWorkflowId(spec.name))
    .terminate('test starts afresh')
    .catch(() => undefined);
  const pool = spec.pool ?? 'sandbox-pool';
  for (const dir of [
    path.join(roots.retain, 'vm-persistent', pool, spec.name),
    path.join(roots.backup, 'vm-persistent', pool, spec.name),
    path.join(roots.ramDisk, spec.name),
  ]) {
    await fs.rm(dir, { recursive: true, force: true });
  }
  const plan =
    spec.plan !== undefined
      ? spec.plan
      : {
          ...defaultPlan({ ...base, ramDisk: spec.ramDisk ?? base.ramDisk }),
          vmbackupMode: spec.mode === 'unset' ? undefined : (spec.mode ?? 'save'),
          ...spec.planOverrides,
        };
  return createSandboxVm({ ...base, ...spec, plan }, deps);
}

export function removeVm(name: string, pool?: string): Promise<void> {
  return removeSandboxVm(name, deps, pool);
}

/** After a test: stops the VM's runs, removes it and whatever its runs left in the storage roots. */
export async function forgetVm(name: string, pool = 'sandbox-pool'): Promise<void> {
  await (
    await temporal()
  ).workflow
    .getHandle(vmWorkflowId(name))
    .terminate('test over')
    .catch(() => undefined);
  await removeVm(name, pool).catch(() => undefined);
  for (const dir of [
    path.join(roots.retain, 'vm-persistent', pool, name),
    path.join(roots.backup, 'vm-persistent', pool, name),
    path.join(roots.ramDisk, name),
  ])
    await fs.rm(dir, { recursive: true, force: true });
}

let client: Client | undefined;
export async function temporal(): Promise<Client> {
  if (!client) {
    client = await connectClient(temporalConfig());
  }
  return client;
}

let lastRunDate = 0;
/** A fresh run date per backup: two runs in the same second would share a leaf. */
export function nextRunDate(): string {
  const t = Math.max(Date.now(), lastRunDate + 1000);
  lastRunDate = t;
  return formatRunDate(new Date(Math.floor(t / 1000) * 1000));
}

export async function startBackup(vm: string, runDate = nextRunDate()) {
  const c = await temporal();
  return c.workflow.start('backupVm', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: vmWorkflowId(vm),
    args: [{ vm, runDate, timing: timingFromEnv() }],
  });
}

export async function backup(vm: string, runDate = nextRunDate()): Promise<BackupVmResult> {
  const handle = await startBackup(vm, runDate);
  return (await handle.result()) as BackupVmResult;
}

export async function backupMany(vms: string[], runDate = nextRunDate()): Promise<BackupVmsResult> {
  const c = await temporal();
  return (await c.workflow.execute('backupVms', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: `backup-vms/${runDate}-test`,
    args: [{ vms, runDate, timing: timingFromEnv() }],
  })) as BackupVmsResult;
}

export function leaves(vm: string): Promise<LeafState[]> {
  return withDirectory(directory, (dir) => readLeaves(dir, tree, vm));
}

export async function backingFileOf(file: string): Promise<string | undefined> {
  return (await imageInfo(file)).fullBackingFilename;
}

/** True when both images show the guest exactly the same bytes (`qemu-img compare`). */
export async function sameGuestContent(a: string, b: string): Promise<boolean> {
  try {
    await run('qemu-img', ['compare', '-U', '--', a, b]);
    return true;
  } catch {
    return false;
  }
}

export interface GuestWrite {
  pattern: number;
  offset: number;
  length: number;
}

/**
 * The disk a guest sees after these writes on an empty disk, as a raw image: what a
 * backup must hold byte for byte. (Copying the live image instead would read a qcow2
 * that QEMU is still writing.)
 */
export async function expectedDisk(
  scratch: string,
  name: string,
  size: number,
  writes: GuestWrite[],
): Promise<string> {
  await fs.mkdir(scratch, { recursive: true });
  const file = path.join(scratch, `${name}.expected.raw`);
  const handle = await fs.open(file, 'w');
  try {
    await handle.truncate(size);
    for (const w of writes) await handle.write(Buffer.alloc(w.length, w.pattern), 0, w.length, w.offset);
  } finally {
    await handle.close();
  }
  return file;
}

/** Writes through the guest's device and records the write for `expectedDisk`. */
export async function guestWrite(vm: string, disk: number, w: GuestWrite, log?: GuestWrite[]): Promise<void> {
  await guest.write(vm, disk, w.pattern, w.offset, w.length);
  log?.push(w);
}

export async function guestReads(vm: string, disk: number, w: GuestWrite): Promise<boolean> {
  return guest.reads(vm, disk, w.pattern, w.offset, w.length);
}

export async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort();
  } catch {
    return [];
  }
}

export async function tree_of(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  }
  await walk(root);
  return out.sort();
}
