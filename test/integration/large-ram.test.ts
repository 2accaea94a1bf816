import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob } from '../../src/dev/guest-ram';
import { vmWorkflowId } from '../../src/workflows/ids';
import { decideUpdate } from '../../src/workflows/messages';
import type { RestoreVmResult } from '../../src/workflows/restore-vm';
import {
  backup,
  createVm,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  roots,
  temporal,
  virsh,
} from '../support/harness';
import { useTestNode } from '../support/lifecycle';
import { startRestore, waitForStage } from '../support/restore';

const NODE = 'vmbt-node-bigram';
const names = useTestNode(NODE).vms;
const GiB = 1024 * MiB;
const VM = 'vmbt-bigram';
const POOL = 'sandbox-pool';
// B overwrites the start of A: reading all of A afterwards also proves B is gone.
const A = { pattern: 0xa7, offset: 0, length: 4 * MiB };
const B = { pattern: 0xb8, offset: 0, length: MiB };

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

afterAll(async () => {
  // A failed restore must not stay behind retrying; the backup's GiB go with the VM's directories.
  await (
    await temporal()
  ).workflow
    .getHandle(vmWorkflowId(VM))
    .terminate('test over')
    .catch(() => undefined);
  for (const dir of [
    path.join(roots.retain, 'vm-persistent', POOL, VM),
    path.join(roots.backup, 'vm-persistent', POOL, VM),
    path.join(roots.ramDisk, VM),
  ])
    await fs.rm(dir, { recursive: true, force: true });
});

describe('a VM whose RAM holds GiB of data', () => {
  it(
    'backs up a 3 GiB VM to a state file over 2 GiB and restores it: RAM from the state, disk as at the snapshot',
    async () => {
      // 2.25 GiB of random data: the state file is over 2 GiB, where Node's readFile gives up.
      const blob = await ensureRamBlob('vmbt-2304m', 2304 * MiB);
      names.push(VM);
      await createVm({ name: VM, node: NODE, pool: POOL, disks: 1, memoryMiB: 3 * 1024, ramData: blob });
      expect(await blobRangeSha256(virsh, VM, blob)).toBe(blob.sha256);
      await guestWrite(VM, 0, A);

      let t = performance.now();
      const done = await backup(VM);
      console.log(
        `backup of ${VM}: ${seconds(t)} s, snapshot ${done.snapshotMs} ms, downtime (save + restore) ${done.downtimeMs} ms`,
      );
      const stateFile = (await fs.readdir(done.backupDir)).find((f) => f.startsWith(`${VM}.state.`));
      expect(stateFile).toBeDefined();
      const stateBytes = (await fs.stat(path.join(done.backupDir, stateFile!))).size;
      console.log(`state file: ${stateBytes} bytes`);
      expect(stateBytes).toBeGreaterThan(2 * GiB);
      expect((await leaves(VM)).find((l) => l.runDate === done.runDate)).toMatchObject({
        mode: 'finished',
        returnValue: 0,
      });
      expect(await virsh.state(VM)).toBe('running');

      await guestWrite(VM, 0, B);
      // The loader fills RAM at every QEMU start, a restore's too: with zeros there, only
      // the saved state can bring the blob back.
      await blankRamLoaders(VM, blob);

      t = performance.now();
      const handle = await startRestore(VM);
      const status = await waitForStage(handle, ['awaiting-decision', 'failed']);
      expect(status, status.message).toMatchObject({
        stage: 'awaiting-decision',
        backup: done.runDate,
        withState: true,
      });
      console.log(`restore up to the decision: ${seconds(t)} s`);
      t = performance.now();
      await handle.executeUpdate(decideUpdate, {
        args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
      });
      const result = (await handle.result()) as RestoreVmResult;
      console.log(`restore after the decision (unretain large files, restore): ${seconds(t)} s`);
      expect(result).toMatchObject({ outcome: 'restored', backup: done.runDate, state: 'running' });

      expect(await virsh.state(VM)).toBe('running');
      expect(await blobRangeSha256(virsh, VM, blob)).toBe(blob.sha256);
      expect(await guestReads(VM, 0, A)).toBe(true);
      expect(await guestReads(VM, 0, B)).toBe(false);
    },
    30 * 60_000,
  );
});
