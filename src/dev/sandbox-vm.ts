import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DirectoryConfig, NodeConfig } from '../config';
import { withDirectory, type Directory } from '../directory/connection';
import { StoneyTree } from '../directory/dn';
import { run } from '../hypervisor/run';
import type { Virsh } from '../hypervisor/virsh';
import {
  checkBlobFits,
  linkRamLoaders,
  loaderArgs,
  removeRamLoaders,
  type RamBlob,
  type RamBlobPiece,
} from './guest-ram';
import { linuxGuestDomainXml } from './linux-guest';

/**
 * A tiny VM for the demo and the tests: TCG, no guest OS (it idles in the BIOS), qcow2
 * disks, with its directory entries (VM, devices, disks, backup plan) as the contract has them.
 */
export interface SandboxVmSpec {
  name: string;
  node: string;
  pool?: string | undefined;
  disks?: number | undefined;
  running?: boolean | undefined;
  memoryMiB?: number | undefined;
  /**
   * Values of `ou=backup,<vm>`; `undefined` values are left out. `null`: no entry, the
   * VM follows its pool's or the global plan. The cron class is added when cron fields are given,
   * `vmbackupPlanObjectClass` (ldap/schema/vmbackup.ldif) when `vmbackupMode` is.
   */
  plan?: Record<string, string | undefined> | null | undefined;
  retainRoot: string;
  backupRoot: string;
  ramDisk?: string | undefined;
  /** Guest RAM filled with this blob at every boot (`ensureRamBlob`); absent: an idle BIOS guest's zero pages. */
  ramData?: RamBlob | undefined;
  /** A real Linux guest that ticks on disk and console (src/dev/linux-guest.ts); give it memoryMiB >= 128. */
  linuxGuest?: boolean | undefined;
}

export interface SandboxVm {
  name: string;
  disks: Array<{ target: string; file: string }>;
}

export const SANDBOX_DISK_SIZE = 64 * 1024 * 1024;

function domainXml(
  name: string,
  memoryMiB: number,
  disks: SandboxVm['disks'],
  loaders: RamBlobPiece[] = [],
): string {
  const diskXml = disks
    .map(
      (d) => `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${d.file}'/>
      <target dev='${d.target}' bus='virtio'/>
    </disk>`,
    )
    .join('\n');
  const qemuNs = loaders.length ? " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" : '';
  const commandline = loaders.length
    ? `  <qemu:commandline>\n${loaderArgs(loaders)
        .map((a) => `    ${a}\n`)
        .join('')}  </qemu:commandline>\n`
    : '';
  return `<domain type='qemu'${qemuNs}>
  <name>${name}</name>
  <memory unit='MiB'>${memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
${diskXml}
    <console type='pty'/>
    <memballoon model='none'/>
  </devices>
${commandline}</domain>
`;
}

export function defaultPlan(
  spec: Pick<SandboxVmSpec, 'retainRoot' | 'backupRoot' | 'ramDisk'>,
): Record<string, string | undefined> {
  return {
    sstBackupRootDirectory: `file://${spec.backupRoot}`,
    sstBackupRetainDirectory: `file://${spec.retainRoot}`,
    sstBackupRamDiskLocation: spec.ramDisk ? `file://${spec.ramDisk}` : undefined,
    sstVirtualizationDiskImageFormat: 'qcow2',
    sstVirtualizationDiskImageOwner: 'root',
    sstVirtualizationDiskImageGroup: 'root',
    sstVirtualizationDiskImagePermission: '660',
    sstBackupNumberOfIterations: '1',
    sstVirtualizationVirtualMachineForceStart: 'FALSE',
    sstVirtualizationBandwidthMerge: '0',
    sstCronMinute: '0',
    sstCronHour: '3',
    sstCronDay: '*',
    sstCronMonth: '*',
    sstCronDayOfWeek: '*',
    sstCronActive: 'TRUE',
  };
}

async function addVmEntries(
  dir: Directory,
  tree: StoneyTree,
  spec: SandboxVmSpec,
  vm: SandboxVm,
  memoryMiB: number,
): Promise<void> {
  const vmDn = tree.vm(spec.name);
  await dir.add(vmDn, {
    objectClass: ['top', 'sstVirtualizationVirtualMachine'],
    sstVirtualMachine: spec.name,
    sstDisplayName: `sandbox ${spec.name}`,
    description: 'sandbox VM of the vmbackup project',
    sstClockOffset: 'utc',
    sstMemory: String(memoryMiB * 1024 * 1024),
    sstNode: spec.node,
    sstOnCrash: 'destroy',
    sstOnPowerOff: 'destroy',
    sstOnReboot: 'restart',
    sstOSArchitecture: 'x86_64',
    sstOSBootDevice: 'hd',
    sstOSMachine: 'pc',
    sstOSType: 'hvm',
    sstStatus: 'running',
    sstType: 'qemu',
    sstVCPU: '1',
    sstVirtualMachinePool: spec.pool ?? 'sandbox-pool',
  });
  await dir.add(tree.devices(spec.name), {
    objectClass: ['top', 'organizationalUnit', 'sstVirtualizationVirtualMachineDevices'],
    ou: 'devices',
    sstEmulator: '/usr/bin/qemu-system-x86_64',
    sstMemBalloon: 'none',
  });
  for (const d of vm.disks) {
    await dir.add(`sstDisk=${d.target},${tree.devices(spec.name)}`, {
      objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
      sstDisk: d.target,
      sstDevice: 'disk',
      sstSourceFile: d.file,
      sstTargetBus: 'virtio',
      sstType: 'file',
      sstDriverName: 'qemu',
      sstDriverType: 'qcow2',
      sstVolumeCapacity: String(SANDBOX_DISK_SIZE),
    });
  }
  if (spec.plan === null) return;
  const plan = Object.fromEntries(
    Object.entries(spec.plan ?? defaultPlan(spec)).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  const cron = 'sstCronMinute' in plan ? ['sstCronObjectClass'] : [];
  const mode = 'vmbackupMode' in plan || 'vmbackupVerifyDays' in plan ? ['vmbackupPlanObjectClass'] : [];
  await dir.add(tree.vmBackup(spec.name), {
    objectClass: ['top', 'organizationalUnit', 'sstVirtualizationBackupObjectClass', ...cron, ...mode],
    ou: 'backup',
    ...plan,
  });
}

/** Disks of sandbox VMs live in `<images root>/vm-persistent/<pool>/`, as in the original layout. */
function sandboxDir(node: NodeConfig, pool: string | undefined): string {
  return path.join(node.imagesRoot, 'vm-persistent', pool ?? 'sandbox-pool');
}

export async function removeSandboxVm(
  name: string,
  deps: { virsh: Virsh; directory: DirectoryConfig; node: NodeConfig },
  pool?: string,
): Promise<void> {
  const state = await deps.virsh.state(name);
  if (state && state !== 'shut off') await deps.virsh.destroy(name);
  if (state) await deps.virsh.undefine(name);
  await withDirectory(deps.directory, async (dir) => {
    const tree = new StoneyTree(deps.directory.baseDn);
    const entries = await dir.search(tree.vm(name), 'sub', '(objectClass=*)', ['1.1']);
    for (const e of entries.sort((a, b) => b.dn.split(',').length - a.dn.split(',').length))
      await dir.del(e.dn);
  });
  const dir = sandboxDir(deps.node, pool);
  for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
    if (f.startsWith(`${name}-disk`)) await fs.rm(path.join(dir, f), { force: true });
  }
  await removeRamLoaders(name);
}

/** Creates (after removing any leftover of the same name) a sandbox VM with its directory entries. */
export async function createSandboxVm(
  spec: SandboxVmSpec,
  deps: { virsh: Virsh; directory: DirectoryConfig; node: NodeConfig },
): Promise<SandboxVm> {
  await removeSandboxVm(spec.name, deps, spec.pool);
  const memoryMiB = spec.memoryMiB ?? 32;
  if (spec.ramData) checkBlobFits(spec.ramData, memoryMiB * 1024 * 1024);
  const dir = sandboxDir(deps.node, spec.pool);
  await fs.mkdir(dir, { recursive: true });
  const vm: SandboxVm = { name: spec.name, disks: [] };
  for (let i = 0; i < (spec.disks ?? 1); i++) {
    const file = path.join(dir, `${spec.name}-disk${i}.qcow2`);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(SANDBOX_DISK_SIZE)]);
    vm.disks.push({ target: `vd${String.fromCharCode(97 + i)}`, file });
  }
  const xmlFile = path.join(dir, `${spec.name}-domain.xml`);
  const loaders = spec.ramData ? await linkRamLoaders(spec.name, spec.ramData) : [];
  await fs.writeFile(xmlFile, domainXml(spec.name, memoryMiB, vm.disks, loaders));
  if (spec.linuxGuest)
    await fs.writeFile(xmlFile, await linuxGuestDomainXml(spec.name, await fs.readFile(xmlFile, 'utf8')));
  await deps.virsh.define(xmlFile);
  await fs.rm(xmlFile);
  await withDirectory(deps.directory, (d) =>
    addVmEntries(d, new StoneyTree(deps.directory.baseDn), spec, vm, memoryMiB),
  );
  if (spec.running ?? true) await deps.virsh.start(spec.name);
  return vm;
}
