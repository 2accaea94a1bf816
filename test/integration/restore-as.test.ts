import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import { withDirectory } from '../../src/directory/connection';
import { RESTORE_AS_ACTIONS } from '../../src/domain/steps/restore-as';
import { vmWorkflowId } from '../../src/workflows/ids';
import type { RestoreAsWorkflowResult } from '../../src/workflows/restore-as';
import {
  backup,
  createVm,
  directory,
  guestReads,
  guestWrite,
  MiB,
  removeVm,
  roots,
  temporal,
  tree,
  virsh,
} from '../support/harness';
import { actionBoundaries, expectedOnPath, runWithKills } from '../support/kill-sweep';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmdr-node-as';
const names = useTestNode(NODE).vms;
const A = { pattern: 0xa3, offset: 0, length: 2 * MiB };
const B = { pattern: 0xb4, offset: 0, length: 2 * MiB };

const startAs = (vm: string, as: string, backupDate?: string) =>
  temporal().then((c) =>
    c.workflow.start('restoreAs', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: vmWorkflowId(as),
      args: [{ vm, as, backup: backupDate, timing: timingFromEnv() }],
    }),
  );
const restoreAs = async (vm: string, as: string, backupDate?: string) =>
  (await (await startAs(vm, as, backupDate)).result()) as RestoreAsWorkflowResult;

const subtree = (vm: string) =>
  withDirectory(directory, async (dir) =>
    (await dir.search(tree.vm(vm), 'sub', '(objectClass=*)'))
      .filter((e) => !(e.attributes['objectclass'] ?? []).some((c) => /sstprovisioning/i.test(c)))
      .map((e) => ({ dn: e.dn, attributes: e.attributes }))
      .sort((a, b) => a.dn.localeCompare(b.dn)),
  );
const uuidOf = async (vm: string) => /<uuid>(.*)<\/uuid>/.exec(await virsh.dumpXml(vm))?.[1];

describe('restore --as', () => {
  it('brings the backup up as a second VM while the original keeps running with its own data', async () => {
    const vm = 'vmdr-as-orig';
    const as = 'vmdr-as-clone';
    names.push(vm, as);
    await removeVm(as);
    const created = await createVm({ name: vm, node: NODE, disks: 1 });
    await guestWrite(vm, 0, A);
    const done = await backup(vm);
    await guestWrite(vm, 0, B);
    const before = { xml: await virsh.dumpInactiveXml(vm), entry: await subtree(vm), uuid: await uuidOf(vm) };
    const r = await restoreAs(vm, as);
    expect(r).toMatchObject({ vm, as, runDate: done.runDate, state: 'running', withState: true });
    const file = path.join(path.dirname(created.disks[0]!.file), `${as}-disk0.qcow2`);
    expect(r.disks).toEqual([{ target: 'vda', from: created.disks[0]!.file, file }]);
    // The clone reads what the guest had at the backup; the original what it has now.
    expect(await virsh.state(as)).toBe('running');
    expect(await guestReads(as, 0, A)).toBe(true);
    expect(await guestReads(vm, 0, B)).toBe(true);
    expect(await virsh.diskSources(as)).toEqual(new Map([['vda', file]]));
    expect(await uuidOf(as)).toBe(r.uuid);
    expect(r.uuid).not.toBe(before.uuid);
    // The clone is persistent: its definition stays.
    expect(await virsh.dumpInactiveXml(as)).toContain(`<name>${as}</name>`);
    // The original: running, same XML, same entry.
    expect(await virsh.state(vm)).toBe('running');
    expect(await virsh.dumpInactiveXml(vm)).toBe(before.xml);
    expect(await subtree(vm)).toEqual(before.entry);
    // The new entry: the original's, renamed, its disk the copy, its node the original's.
    const entry = await subtree(as);
    expect(entry.map((e) => e.dn)).toEqual(
      before.entry.map((e) => e.dn.replace(`sstVirtualMachine=${vm}`, `sstVirtualMachine=${as}`)),
    );
    const top = entry.find((e) => e.dn === tree.vm(as))!;
    expect(top.attributes['sstvirtualmachine']).toEqual([as]);
    expect(top.attributes['sstnode']).toEqual([NODE]);
    expect(entry.flatMap((e) => e.attributes['sstsourcefile'] ?? [])).toEqual([file]);
    // Nothing left of the work.
    expect(existsSync(path.join(roots.retain, 'restore-as', as))).toBe(false);
  }, 300_000);

  it('refuses an unknown VM, a taken name (entry or domain) and a bad name, changing nothing', async () => {
    const vm = 'vmdr-as-orig';
    const taken = 'vmdr-as-taken';
    names.push(taken);
    await createVm({ name: taken, node: NODE, disks: 1, running: false });
    const dirBefore = await fs.readdir(path.join(roots.retain));
    await expect(restoreAs('vmdr-as-unknown', 'vmdr-as-new')).rejects.toThrow();
    await expect(restoreAs(vm, taken)).rejects.toThrow();
    await expect(restoreAs(vm, vm)).rejects.toThrow();
    await expect(restoreAs(vm, 'bad name')).rejects.toThrow();
    const failure = (await restoreAs(vm, taken).catch((e: unknown) => e)) as { cause?: Error };
    expect(String(failure.cause?.message)).toMatch(/exists/);
    // A domain of the name, without an entry: refused by the node before it changes anything.
    const domainOnly = 'vmdr-as-domonly';
    names.push(domainOnly);
    await createVm({ name: domainOnly, node: NODE, disks: 1, running: false });
    await withDirectory(directory, async (dir) => {
      const es = await dir.search(tree.vm(domainOnly), 'sub', '(objectClass=*)', ['1.1']);
      for (const e of es.sort((a, b) => b.dn.split(',').length - a.dn.split(',').length)) await dir.del(e.dn);
    });
    const refused = (await restoreAs(vm, domainOnly).catch((e: unknown) => e)) as { cause?: Error };
    expect(String(refused.cause?.message)).toMatch(/a domain named vmdr-as-domonly exists/);
    expect(await virsh.state(taken)).toBe('shut off');
    expect(await virsh.state('vmdr-as-new')).toBeUndefined();
    expect(await fs.readdir(path.join(roots.retain))).toEqual(dirBefore);
    expect(existsSync(path.join(roots.retain, 'restore-as', domainOnly))).toBe(false);
  }, 300_000);
});

describe('restore --as, killed', () => {
  it('survives a kill of the node worker at every boundary of every action', async () => {
    const KNODE = 'vmdr-node-ask';
    const vm = 'vmdr-as-korig';
    const as = 'vmdr-as-kclone';
    names.push(vm, as);
    await removeVm(as);
    const dir = await fs.mkdtemp('/tmp/vmdr-askill-');
    const points = actionBoundaries('restore-as', RESTORE_AS_ACTIONS);
    const outcome = await runWithKills<RestoreAsWorkflowResult>({
      node: KNODE,
      dir,
      points,
      start: async () => {
        await createVm({ name: vm, node: KNODE, disks: 1 });
        await guestWrite(vm, 0, A);
        await backup(vm);
        await guestWrite(vm, 0, B);
        return startAs(vm, as);
      },
    });
    await fs.rm(dir, { recursive: true, force: true });
    expect(outcome.error).toBeUndefined();
    expect(outcome.result).toMatchObject({ state: 'running', withState: true });
    expect(outcome.fired).toEqual(
      expectedOnPath(points, {
        'restore-as:start-vm': 'the VM ran at the backup: it comes back from its state',
      }),
    );
    expect(await guestReads(as, 0, A)).toBe(true);
    expect(await guestReads(vm, 0, B)).toBe(true);
    expect(existsSync(path.join(roots.retain, 'restore-as', as))).toBe(false);
    await removeVm(as);
    await removeVm(vm);
  }, 600_000);
});
