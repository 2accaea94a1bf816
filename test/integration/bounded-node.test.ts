import { promises as fs, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inodeOf, qemuOpenFiles } from '../../src/activities/node/observe';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob, removeRamBlob } from '../../src/dev/guest-ram';
import { SANDBOX_DISK_SIZE, type SandboxVm } from '../../src/dev/sandbox-vm';
import { stateFileBytes } from '../../src/domain/save-room';
import { run } from '../../src/hypervisor/run';
import { vmWorkflowId } from '../../src/workflows/ids';
import {
  backingFileOf,
  backupMany,
  createVm,
  forgetVm,
  expectedDisk,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  nextRunDate,
  node,
  roots,
  sameGuestContent,
  temporal,
  tree_of,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { WorkerProcess } from '../support/worker-process';
import { decodePayload } from '../support/payloads';

const NODE = 'vmbt-node-bound';
const names = ['vmbt-bound-1', 'vmbt-bound-2', 'vmbt-bound-3', 'vmbt-bound-4'];
const BLOB = 'vmbt-bound-192m';
const mount = path.join(roots.ramDisk, 'vmbt-bound-tmpfs');
let scratch: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-bound-'));
});

afterAll(async () => {
  for (const vm of names) await forgetVm(vm);
  await run('umount', [mount]).catch(() => undefined);
  await fs.rmdir(mount).catch(() => undefined);
  await removeRamBlob(BLOB).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

/**
 * Samples, until stopped, how many state files lie on the RAM disk at once and what the
 * snapshots heartbeat while they wait for room.
 */
function watch(mountDir: string, vms: string[]) {
  const seen = { maxStates: 0, waiting: new Set<string>() };
  let stop = false;
  const done = (async () => {
    const c = await temporal();
    for (let n = 0; !stop; n++) {
      const states = (await tree_of(mountDir)).filter((f) => /\.state\./.test(f));
      seen.maxStates = Math.max(seen.maxStates, states.length);
      if (n % 3 === 0)
        for (const vm of vms) {
          const d = await c.workflow
            .getHandle(vmWorkflowId(vm))
            .describe()
            .catch(() => undefined);
          for (const a of d?.raw.pendingActivities ?? []) {
            const p = a.heartbeatDetails?.payloads?.[0];
            if (!p) continue;
            const w = (await decodePayload<{ waiting?: string }>(p)).waiting;
            if (w?.startsWith('waiting for room')) seen.waiting.add(`${vm}: ${w}`);
          }
        }
      await sleep(100);
    }
  })();
  return {
    seen,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

describe('a node bounds its saves by the room on the save directory', () => {
  it('four VMs whose states fit a RAM disk two at a time: all are backed up, their saves grouped to fit, and the run says how', async () => {
    const memoryMiB = 256;
    const needed = stateFileBytes(memoryMiB * MiB);
    await fs.mkdir(mount, { recursive: true });
    // Room for two states' reservations (2 × ~298 MiB) but not for four states (~4 × 195 MiB).
    await run('mount', ['-t', 'tmpfs', '-o', 'size=640m,mode=0755', 'tmpfs', mount]);
    const s = statfsSync(mount);
    expect(Math.floor((s.bavail * s.bsize) / needed)).toBe(2);
    const blob = await ensureRamBlob(BLOB, 192 * MiB);
    expect(4 * blob.bytes).toBeGreaterThan(s.blocks * s.bsize);

    const t = performance.now();
    const worker = await WorkerProcess.start(['node', '--node', NODE]);
    try {
      const created: SandboxVm[] = [];
      const written: GuestWrite[][][] = [];
      for (const [i, name] of names.entries()) {
        created.push(
          await createVm({
            name,
            node: NODE,
            disks: 1,
            memoryMiB,
            ramData: blob,
            planOverrides: { sstBackupRamDiskLocation: `file://${mount}` },
          }),
        );
        // From here on, the blob in guest RAM can only come back from the saved state.
        await blankRamLoaders(name, blob);
        const w: GuestWrite[][] = [[]];
        await guestWrite(name, 0, { pattern: 0x60 + i, offset: i * MiB, length: 2 * MiB }, w[0]);
        written.push(w);
      }
      for (const name of names) expect(await blobRangeSha256(virsh, name, blob)).toBe(blob.sha256);
      console.log(`[bound] four VMs ready: ${seconds(t)} s`);

      const runDate = nextRunDate();
      const watcher = watch(mount, names);
      const started = performance.now();
      const res = await backupMany(names, runDate).finally(() => watcher.stop());
      console.log(`[bound] backupMany of four VMs: ${seconds(started)} s`);
      console.log(`[bound] saves: ${JSON.stringify(res.saves)}`);
      console.log(`[bound] most state files on the RAM disk at once: ${watcher.seen.maxStates}`);
      console.log(`[bound] waiting heartbeats: ${JSON.stringify([...watcher.seen.waiting].slice(0, 4))}`);

      for (const [i, r] of res.results.entries()) {
        const vm = created[i]!;
        console.log(
          `[bound] ${vm.name}: ${r.outcome}${r.outcome === 'backed-up' ? `, downtime ${r.downtimeMs} ms` : ` (${r.outcome === 'failed' ? `code ${r.errorCode}: ` : ''}${r.message.replace(/\s+/g, ' ')})`}`,
        );
      }
      expect(res.results.map((r) => r.outcome)).toEqual(['backed-up', 'backed-up', 'backed-up', 'backed-up']);

      // The saves were grouped to fit: never more than two states written at once.
      const saves = res.saves!;
      expect(saves.spans.map((x) => x.vm).sort()).toEqual([...names].sort());
      expect(saves.maxConcurrent).toBeLessThanOrEqual(2);
      expect(saves.groups.length).toBeGreaterThanOrEqual(2);
      expect(saves.groups.flat().sort()).toEqual([...names].sort());
      for (const g of saves.groups) expect(g.length).toBeLessThanOrEqual(2);
      expect(watcher.seen.maxStates).toBeLessThanOrEqual(2);
      // Those held back said why while they waited.
      expect([...watcher.seen.waiting].join('\n')).toMatch(
        new RegExp(
          `waiting for room for the state file on ${mount}/vmbt-bound-\\d: \\d+ MiB needed, \\d+ free`,
        ),
      );

      for (const [i, r] of res.results.entries()) {
        const vm = created[i]!;
        if (r.outcome !== 'backed-up') continue;
        // Runs again on its live images, from its saved state, and the guest reads its data.
        expect(await virsh.state(vm.name)).toBe('running');
        const held = await qemuOpenFiles(vm.name, node.libvirtRunDir);
        const d = vm.disks[0]!;
        expect(held.has((await inodeOf(d.file))!)).toBe(true);
        expect(await backingFileOf(d.file)).toBeUndefined();
        for (const w of written[i]![0]!) expect(await guestReads(vm.name, 0, w)).toBe(true);
        expect(await blobRangeSha256(virsh, vm.name, blob)).toBe(blob.sha256);
        // The backup holds the guest's disk byte for byte and the whole state.
        const expected = await expectedDisk(
          scratch,
          `${vm.name}-${d.target}`,
          SANDBOX_DISK_SIZE,
          written[i]![0]!,
        );
        const saved = path.join(r.backupDir, `${path.basename(d.file)}.${runDate}`);
        expect(await sameGuestContent(expected, saved), `backup of ${vm.name} equals its disk`).toBe(true);
        const state = await fs.stat(path.join(r.backupDir, `${vm.name}.state.${runDate}`));
        expect(state.size).toBeGreaterThan(blob.bytes);
        const leaf = (await leaves(vm.name)).find((l) => l.runDate === runDate);
        expect(leaf).toMatchObject({ mode: 'finished', returnValue: 0 });
        expect((await tree_of(roots.retain)).filter((f) => f.includes(vm.name))).toEqual([]);
      }
      expect(await tree_of(mount)).toEqual([]);
    } finally {
      await worker.stop();
    }
    console.log(`[bound] whole test: ${seconds(t)} s`);
  }, 900_000);
});
