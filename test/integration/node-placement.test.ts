import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeActivities } from '../../src/activities/node';
import { directoryPlacement } from '../../src/activities/node/placement';
import { withDirectory } from '../../src/directory/connection';
import { readPlan, readVm } from '../../src/directory/vm-directory';
import { nodeDirectory } from '../../src/workers/node';
import { createVm, directory, nextRunDate, node, removeVm, roots, tree, virsh } from '../support/harness';

/**
 * The node worker's own activities, run as Temporal would run them, for a worker that
 * believes it is `asNode`: what a caller who can reach that node's task queue could make it do.
 */
function activitiesOf(asNode: string) {
  return createNodeActivities(node, directoryPlacement(nodeDirectory(process.env), asNode));
}

async function runInput(vm: string) {
  return withDirectory(directory, async (dir) => {
    const record = await readVm(dir, tree, vm);
    return { vm, runDate: nextRunDate(), disks: record.disks, plan: await readPlan(dir, tree, record) };
  });
}

const HOME = 'vmbt-node-p';
const VM = 'vmbt-placed';

describe('a node acts only on VMs whose directory entry names it', () => {
  afterAll(() => removeVm(VM));

  it('refuses to snapshot a VM the directory places on another node, and leaves the VM and its files as they were', async () => {
    const vm = await createVm({ name: VM, node: HOME, mode: 'save' });
    const input = await runInput(VM);
    const before = await virsh.dumpXml(VM);

    await expect(
      new MockActivityEnvironment().run(activitiesOf('vmbt-node-q').snapshot, { ...input, ldif: '' }),
    ).rejects.toThrow(`VM ${VM} belongs to node ${HOME} in the directory, not to node vmbt-node-q`);

    expect(await virsh.state(VM)).toBe('running');
    expect(await virsh.dumpXml(VM)).toBe(before);
    expect(await virsh.diskSources(VM)).toEqual(new Map(vm.disks.map((d) => [d.target, d.file])));
    const retain = path.join(roots.retain, 'vm-persistent', 'sandbox-pool', VM);
    await expect(fs.stat(retain)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a VM that is not in the directory, even when the caller makes up its disks and plan', async () => {
    const input = { ...(await runInput(VM)), vm: 'vmbt-nowhere' };
    await expect(
      new MockActivityEnvironment().run(activitiesOf(HOME).inspectForSnapshot, input),
    ).rejects.toThrow('VM vmbt-nowhere is not in the directory: node vmbt-node-p does not act on it');
  });

  it("the VM's own node acts on it", async () => {
    const input = await runInput(VM);
    const seen = (await new MockActivityEnvironment().run(activitiesOf(HOME).inspectForSnapshot, input)) as {
      state: string;
    };
    expect(seen.state).toBe('running');
  });
});
