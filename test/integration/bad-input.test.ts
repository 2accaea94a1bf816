import { promises as fs } from 'node:fs';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import { ErrorCode } from '../../src/domain/errors';
import { vmWorkflowId } from '../../src/workflows/ids';
import { withDirectory } from '../../src/directory/connection';
import { repoRoot } from '../support/dev-env';
import {
  directory,
  tree,
  backup,
  createVm,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  roots,
  startBackup,
  temporal,
  tree_of,
  virsh,
} from '../support/harness';
import { failureOf } from '../support/failure';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmbt-node-x';
const created = useTestNode(NODE).vms;

/** Everything of a VM that a refused backup must leave as it was. */
async function footprint(vm: string, disks: string[]) {
  const files = await Promise.all(
    disks.map(async (f) => {
      const s = await fs.stat(f);
      return `${f} ${s.size} ${s.mtimeMs}`;
    }),
  );
  const elsewhere = [
    ...(await tree_of(roots.retain)),
    ...(await tree_of(roots.backup)),
    ...(await tree_of(roots.ramDisk)),
  ].filter((f) => f.includes(vm));
  return { state: await virsh.state(vm), sources: await virsh.diskSources(vm), files, elsewhere };
}

async function vmWith(
  name: string,
  spec: { node?: string; planOverrides?: Record<string, string | undefined> } = {},
) {
  const vm = await createVm({ name, node: spec.node ?? NODE, disks: 1, planOverrides: spec.planOverrides });
  created.push(name);
  const data = { pattern: 0x77, offset: 0, length: MiB };
  await guestWrite(name, 0, data);
  return {
    vm,
    data,
    before: await footprint(
      name,
      vm.disks.map((d) => d.file),
    ),
  };
}

describe('bad input is refused with a clear error and changes nothing', () => {
  it('refuses an unknown VM', async () => {
    const f = await failureOf(backup('vmbt-no-such-vm'));
    expect(f).toMatchObject({ code: ErrorCode.cannotFindMachine });
    expect(f.message).toContain('vmbt-no-such-vm not found in the directory');
    expect(await leaves('vmbt-no-such-vm')).toEqual([]);
  });

  it.each([['a,b'], ['a=b'], ['a+b'], ['a"b'], ["a'b"], ['a b'], ['..'], ['a/../b'], ['x..y'], ['']])(
    'refuses the VM name %j before anything runs',
    async (name) => {
      const c = await temporal();
      const f = await failureOf(
        c.workflow.execute('backupVm', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: `bad-name-test/${Buffer.from(name).toString('hex')}`,
          args: [{ vm: name, timing: timingFromEnv() }],
        }),
      );
      expect(f.message).toMatch(/invalid VM name/);
    },
  );

  it('refuses odd VM names on the command line with exit code 2', async () => {
    const r = await execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, 'backup', 'evil,vm=x'], {
      reject: false,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('invalid VM name "evil,vm=x"');
  });

  it('gives up on a VM whose node has no worker after a bounded wait, with nothing changed', async () => {
    const { vm, data, before } = await vmWith('vmbt-orphan', { node: 'vmbt-node-nobody' });
    const f = await failureOf(backup(vm.name));
    expect(f.message).toMatch(/node vmbt-node-nobody not reachable/);
    expect(await footprint(vm.name, [vm.disks[0]!.file])).toEqual(before);
    expect(await guestReads(vm.name, 0, data)).toBe(true);
  });

  it.each([
    [
      'a plan without sstBackupRootDirectory',
      { sstBackupRootDirectory: undefined },
      ErrorCode.missingConfigurationValue,
      /sstBackupRootDirectory/,
    ],
    [
      'a plan without sstVirtualizationDiskImageOwner',
      { sstVirtualizationDiskImageOwner: undefined },
      ErrorCode.missingConfigurationValue,
      /sstVirtualizationDiskImageOwner/,
    ],
    [
      'a retain directory that is not file://',
      { sstBackupRetainDirectory: 'nfs://filer/retain' },
      ErrorCode.unsupportedProtocol,
      /only file:\/\/ URIs/,
    ],
    [
      'a backup root outside the configured roots',
      { sstBackupRootDirectory: 'file:///etc' },
      ErrorCode.unsupportedConfigurationValue,
      /outside the configured roots/,
    ],
    [
      'a retain path climbing out with ..',
      { sstBackupRetainDirectory: 'file:///var/../etc' },
      ErrorCode.unsupportedConfigurationValue,
      /not an absolute path/,
    ],
    [
      'an unsupported image format',
      { sstVirtualizationDiskImageFormat: 'raw' },
      ErrorCode.unsupportedConfigurationValue,
      /not supported/,
    ],
    [
      'a RAM disk that does not exist',
      { sstBackupRamDiskLocation: 'RAM disk below the roots that does not exist' },
      ErrorCode.ramDiskInvalid,
      /RAM disk/,
    ],
  ] as const)('refuses %s', async (_what, overrides, code, message) => {
    const name = `vmbt-bad-${code}-${Object.keys(overrides)[0]!.length}`;
    const overridesWithRoots =
      'sstBackupRamDiskLocation' in overrides
        ? { sstBackupRamDiskLocation: `file://${roots.ramDisk}/missing` }
        : overrides;
    const { vm, data, before } = await vmWith(name, { planOverrides: overridesWithRoots });
    const f = await failureOf(backup(vm.name));
    expect(f.code).toBe(code);
    expect(f.message).toMatch(message);
    expect(await footprint(vm.name, [vm.disks[0]!.file])).toEqual(before);
    expect(await guestReads(vm.name, 0, data)).toBe(true);
    // The portal sees the failure on the run leaf.
    expect((await leaves(vm.name)).at(-1)).toMatchObject({ state: '0', returnValue: code });
  });

  it('refuses a VM whose directory entry names another disk than libvirt', async () => {
    const { vm, data, before } = await vmWith('vmbt-mismatch');
    await withDirectory(directory, (dir) =>
      dir.replace(`sstDisk=vda,${tree.devices(vm.name)}`, {
        sstSourceFile: path.join(path.dirname(vm.disks[0]!.file), 'other.qcow2'),
      }),
    );
    const f = await failureOf(backup(vm.name));
    expect(f.code).toBe(ErrorCode.directoryXmlInconsistency);
    expect(await footprint(vm.name, [vm.disks[0]!.file])).toEqual(before);
    expect(await guestReads(vm.name, 0, data)).toBe(true);
  });

  it('refuses a second backup of a VM while one runs', async () => {
    const { vm } = await vmWith('vmbt-twice');
    const first = await startBackup(vm.name);
    await expect(startBackup(vm.name)).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    const r = await execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, 'backup', vm.name], {
      reject: false,
    });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      `refused: a backup or restore of ${vm.name} is already running (workflow ${vmWorkflowId(vm.name)})`,
    );
    await first.result();
    expect(await virsh.state(vm.name)).toBe('running');
  });
});
