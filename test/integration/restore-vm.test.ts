import { promises as fs } from 'node:fs';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { initializeLeaf, updateLeaf } from '../../src/directory/run-leaf';
import { repoRoot } from '../support/dev-env';
import { withDirectory } from '../../src/directory/connection';
import { xmlFacts } from '../../src/domain/conflicts';
import { ErrorCode } from '../../src/domain/errors';
import { run } from '../../src/hypervisor/run';
import { abortUpdate, decideSignal, decideUpdate, restoreStatus } from '../../src/workflows/messages';
import type { RestoreVmResult } from '../../src/workflows/restore-vm';
import {
  backup,
  createVm,
  directory,
  node,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  roots,
  startBackup,
  tree,
  tree_of,
  virsh,
} from '../support/harness';
import { refusal, startRestore, waitForStage } from '../support/restore';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmbt-node-r';
const names = useTestNode(NODE).vms;
const A = { pattern: 0xa1, offset: 0, length: 2 * MiB };
const B = { pattern: 0xb2, offset: 4 * MiB, length: MiB };
const zerosWhereB = { pattern: 0, offset: 4 * MiB, length: MiB };

async function vmEntry(vm: string) {
  return withDirectory(directory, async (dir) => (await dir.read(tree.vm(vm)))!.attributes);
}

/** A VM backed up while its guest had written A; afterwards the guest writes B and the configuration changes. */
async function backedUpThenChanged(name: string, opts: { off?: boolean } = {}) {
  names.push(name);
  await createVm({ name, node: NODE, disks: 1 });
  await guestWrite(name, 0, A);
  if (opts.off) await virsh.destroy(name);
  const result = await backup(name);
  if (opts.off) await virsh.start(name);
  await guestWrite(name, 0, B);
  await withDirectory(directory, (dir) =>
    dir.replace(tree.vm(name), { description: 'changed after the backup', sstMemory: String(48 * MiB) }),
  );
  await run('virsh', [
    '-c',
    process.env['LIBVIRT_URI']!,
    'desc',
    name,
    '--config',
    '--new-desc',
    'live description',
  ]);
  await run('virsh', ['-c', process.env['LIBVIRT_URI']!, 'setmaxmem', name, String(48 * 1024), '--config']);
  return result;
}

describe('restoreVm', () => {
  it('restores a VM from its saved state with a mixed decision: the guest sees A and not B, directory and XML follow the decision', async () => {
    const vm = 'vmbt-restore-mixed';
    const done = await backedUpThenChanged(vm);
    // A disk added to the live configuration since the backup, in libvirt and in the directory.
    const added = path.join(node.imagesRoot, 'vm-persistent', 'sandbox-pool', `${vm}-disk1.qcow2`);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', added, '16M']);
    await run('virsh', [
      '-c',
      process.env['LIBVIRT_URI']!,
      'attach-disk',
      vm,
      added,
      'vdb',
      '--subdriver',
      'qcow2',
      '--config',
    ]);
    const addedDn = `sstDisk=vdb,${tree.devices(vm)}`;
    await withDirectory(directory, (dir) =>
      dir.add(addedDn, {
        objectClass: ['top', 'sstVirtualizationVirtualMachineDisk'],
        sstDisk: 'vdb',
        sstDevice: 'disk',
        sstSourceFile: added,
        sstTargetBus: 'virtio',
        sstType: 'file',
      }),
    );
    const handle = await startRestore(vm);
    const status = await waitForStage(handle, ['awaiting-decision']);
    expect(status.backup).toBe(done.runDate);
    expect(status.withState).toBe(true);
    const ids = status.conflicts.map((c) => c.id);
    expect(ids).toEqual(
      expect.arrayContaining(['dir:.:description', 'dir:.:sstmemory', 'xml:memory', 'xml:description']),
    );
    expect(status.conflicts.find((c) => c.id === 'xml:disk[vdb]')).toMatchObject({
      backup: null,
      live: added,
      fixedByState: true,
    });
    expect(status.conflicts.find((c) => c.id === 'dir:sstdisk=vdb,ou=devices:sstsourcefile')).toMatchObject({
      backup: null,
      live: added,
      entryOnlyIn: 'live',
    });
    expect(status.conflicts.find((c) => c.id === 'xml:memory')).toMatchObject({
      backup: String(32 * MiB),
      live: String(48 * MiB),
      linkedTo: 'dir:.:sstmemory',
      fixedByState: true,
    });
    // Nothing live was touched while waiting.
    expect(await guestReads(vm, 0, B)).toBe(true);

    // Keeping the live memory is impossible from a saved state: refused, and it keeps waiting.
    const allLive = Object.fromEntries(status.conflicts.map((c) => [c.id, 'live' as const]));
    expect(await refusal(handle.executeUpdate(decideUpdate, { args: [allLive] }))).toMatch(
      /saved state|cannot add or remove a device/,
    );
    // Directory and XML sides of one fact decided differently: refused with the reason.
    const split = {
      ...Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const])),
      'dir:.:sstmemory': 'live' as const,
    };
    expect(await refusal(handle.executeUpdate(decideUpdate, { args: [split] }))).toMatch(/inconsistent/);
    expect(await refusal(handle.executeUpdate(decideUpdate, { args: [{ 'no-such-id': 'backup' }] }))).toMatch(
      /unknown conflict ids/,
    );
    expect((await handle.query(restoreStatus)).stage).toBe('awaiting-decision');

    const decision = Object.fromEntries(
      status.conflicts.map((c) => [
        c.id,
        c.id === 'dir:.:description' || c.id === 'xml:description' ? ('live' as const) : ('backup' as const),
      ]),
    );
    await handle.executeUpdate(decideUpdate, { args: [decision] });
    // After the decision there is no way back.
    expect(await refusal(handle.executeUpdate(abortUpdate, { args: [{}] }))).toMatch(/no way back/);
    const result = (await handle.result()) as RestoreVmResult;
    expect(result).toMatchObject({ outcome: 'restored', backup: done.runDate, state: 'running' });

    expect(await virsh.state(vm)).toBe('running');
    expect(await guestReads(vm, 0, A)).toBe(true);
    expect(await guestReads(vm, 0, zerosWhereB)).toBe(true);
    const entry = await vmEntry(vm);
    expect(entry['sstmemory']).toEqual([String(32 * MiB)]);
    expect(entry['description']).toEqual(['changed after the backup']);
    const facts = xmlFacts(await virsh.dumpInactiveXml(vm));
    expect(facts.memoryBytes).toBe(String(32 * MiB));
    expect(facts.description).toBe('live description');
    // The disk added live is gone from the configuration (as in the backup); its file is left alone.
    expect([...facts.disks.keys()]).toEqual(['vda']);
    expect(await withDirectory(directory, (dir) => dir.read(addedDn))).toBeUndefined();
    expect((await fs.stat(added)).isFile()).toBe(true);
    expect((await leaves(vm)).find((l) => l.runDate === done.runDate)).toMatchObject({
      mode: 'finished',
      returnValue: 0,
    });
    expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(vm));
  });

  it('aborts before the decision and on a decision timeout: the live VM, its data B and its directory entry stay as they were', async () => {
    const vm = 'vmbt-restore-abort';
    await backedUpThenChanged(vm);
    const before = { entry: await vmEntry(vm), xml: await virsh.dumpInactiveXml(vm) };

    const first = await startRestore(vm);
    await waitForStage(first, ['awaiting-decision']);
    // A signal with a malformed decision is refused and recorded; the restore keeps waiting.
    await first.signal(decideSignal, { bogus: 'maybe' } as never);
    expect((await waitForStage(first, ['awaiting-decision'])).stage).toBe('awaiting-decision');
    await expect
      .poll(async () => (await first.query(restoreStatus)).lastRejection)
      .toMatch(/unknown conflict ids/);
    await first.executeUpdate(abortUpdate, { args: [{ reason: 'changed my mind' }] });
    expect(await first.result()).toMatchObject({ outcome: 'aborted', reason: 'changed my mind' });

    const second = await startRestore(vm, { decisionTimeoutSeconds: 2 });
    expect(await second.result()).toMatchObject({ outcome: 'aborted', reason: 'no decision within 2 s' });

    expect(await virsh.state(vm)).toBe('running');
    expect(await guestReads(vm, 0, B)).toBe(true);
    expect(await vmEntry(vm)).toEqual(before.entry);
    expect(await virsh.dumpInactiveXml(vm)).toBe(before.xml);
    expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(vm));
    expect((await leaves(vm)).at(-1)).toMatchObject({ mode: 'finished', state: '0' });
  });

  /**
   * Backs up `vm`, damages its disk image in the backup with `damage`, and restores it
   * taking the backup's side everywhere: the restore must fail with code 38 matching
   * `message`, and the live VM, its data B and its entry stay as they were.
   */
  async function expectCorruptBackupRefused(
    vm: string,
    damage: (image: string) => Promise<void>,
    message: RegExp,
  ): Promise<void> {
    const done = await backedUpThenChanged(vm);
    const image = (await fs.readdir(done.backupDir)).find((f) => f.includes('-disk0.qcow2.'))!;
    await damage(path.join(done.backupDir, image));
    const before = await vmEntry(vm);

    const restore = await startRestore(vm);
    const status = await waitForStage(restore, ['awaiting-decision']);
    await restore.executeUpdate(decideUpdate, {
      args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
    });
    const failure = await restore.result().then(
      () => undefined,
      (err: { cause?: { message: string; details?: Array<{ code: number }> } }) => err.cause,
    );
    expect(failure?.details?.[0]?.code).toBe(ErrorCode.corruptImage);
    expect(failure?.message).toMatch(message);
    expect(await virsh.state(vm)).toBe('running');
    expect(await guestReads(vm, 0, B)).toBe(true);
    expect(await vmEntry(vm)).toEqual(before);
  }

  async function writeAt(file: string, bytes: Buffer, offset: number): Promise<void> {
    const handle = await fs.open(file, 'r+');
    await handle.write(bytes, 0, bytes.length, offset);
    await handle.close();
  }

  it('refuses a corrupted backup image before anything live is touched', async () => {
    // Break the qcow2 header's L1 table offset.
    await expectCorruptBackupRefused(
      'vmbt-restore-corrupt',
      (image) => writeAt(image, Buffer.alloc(8, 0xff), 40),
      /corrupt/,
    );
  });

  it('refuses a backup image whose guest data changed since the backup (qemu-img check passes, the manifest does not) before anything live is touched', async () => {
    await expectCorruptBackupRefused(
      'vmbt-restore-bitrot',
      async (image) => {
        // One byte inside the guest's data A: the qcow2 structure stays valid.
        const at = (await fs.readFile(image)).indexOf(Buffer.alloc(64 * 1024, A.pattern)) + 4321;
        expect(at).toBeGreaterThan(4321);
        await writeAt(image, Buffer.from([A.pattern ^ 0x10]), at);
      },
      /-disk0\.qcow2\.\d{8}T\d{6}Z is corrupt: .* differ from the backup's manifest/,
    );
  });

  it('restores a VM that was shut down at backup time, and one that libvirt no longer knows', async () => {
    const vm = 'vmbt-restore-off';
    const done = await backedUpThenChanged(vm, { off: true });
    await virsh.destroy(vm);
    await virsh.undefine(vm);
    const handle = await startRestore(vm);
    const status = await waitForStage(handle, ['awaiting-decision']);
    expect(status.withState).toBe(false);
    await handle.executeUpdate(decideUpdate, {
      args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
    });
    expect(await handle.result()).toMatchObject({
      outcome: 'restored',
      backup: done.runDate,
      state: 'shut off',
    });
    // Defined again from the backed-up XML and left off (ForceStart is FALSE); started, the guest sees A only.
    await virsh.start(vm);
    expect(await guestReads(vm, 0, A)).toBe(true);
    expect(await guestReads(vm, 0, zerosWhereB)).toBe(true);
    expect((await vmEntry(vm))['sstmemory']).toEqual([String(32 * MiB)]);
  });
});

describe('restoreVm refusals and the command line', () => {
  it('a backup that does not exist, an incomplete one, and a restore while a backup of the VM runs', async () => {
    const vm = 'vmbt-restore-refuse';
    names.push(vm);
    await createVm({ name: vm, node: NODE, disks: 1 });
    const missing = await startRestore(vm, { backup: '20200101T000000Z' });
    const noBackup = await missing.result().then(
      () => undefined,
      (err: { cause?: Error }) => err.cause?.message,
    );
    expect(noBackup).toMatch(/has no backup 20200101T000000Z/);

    // An incomplete backup: its leaf stops at snapshotting with an error code.
    await withDirectory(directory, async (dir) => {
      await initializeLeaf(dir, tree, vm, '20200102T000000Z', new Date());
      await updateLeaf(
        dir,
        tree,
        vm,
        '20200102T000000Z',
        { mode: 'snapshotting', state: '0', returnValue: 5 },
        new Date(),
      );
    });
    const incomplete = await (await startRestore(vm, { backup: '20200102T000000Z' })).result().then(
      () => undefined,
      (err: { cause?: Error }) => err.cause?.message,
    );
    expect(incomplete).toMatch(/is incomplete/);

    const running = await startBackup(vm);
    await expect(startRestore(vm)).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    await running.result();
    expect(await virsh.state(vm)).toBe('running');
  });

  it('works from the command line: start prints the conflicts, status, a refused decide, abort', async () => {
    const vm = 'vmbt-restore-cli';
    await backedUpThenChanged(vm);
    const cli = (...args: string[]) =>
      execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, ...args], { reject: false });
    const started = await cli('restore', vm, '--decision-timeout', '300');
    expect(started.exitCode).toBe(0);
    expect(started.stdout).toMatch(/awaiting-decision/);
    expect(started.stdout).toMatch(/xml:memory\s+33554432\s+50331648/);
    const status = await cli('restore', 'status', vm);
    expect(status.stdout).toMatch(/dir:\.:description/);
    const refused = await cli('restore', 'decide', vm, '--all-live');
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(/decision refused: .*saved state/);
    const aborted = await cli('restore', 'abort', vm, '--reason', 'operator test');
    expect(aborted.exitCode).toBe(0);
    expect(aborted.stdout).toContain(`${vm}: restore aborted: operator test`);
    expect(await guestReads(vm, 0, B)).toBe(true);
  });
});
