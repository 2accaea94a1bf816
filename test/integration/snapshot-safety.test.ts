import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inodeOf, qemuOpenFiles } from '../../src/activities/node/observe';
import {
  blankRamLoaders,
  blobRangeSha256,
  ensureRamBlob,
  removeRamBlob,
  type RamBlob,
} from '../../src/dev/guest-ram';
import { SANDBOX_DISK_SIZE, type SandboxVm } from '../../src/dev/sandbox-vm';
import { withDirectory } from '../../src/directory/connection';
import { ErrorCode } from '../../src/domain/errors';
import { run } from '../../src/hypervisor/run';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import { vmWorkflowId } from '../../src/workflows/ids';
import {
  backingFileOf,
  backupMany,
  createVm,
  forgetVm,
  directory,
  expectedDisk,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  nextRunDate,
  node,
  removeVm,
  roots,
  sameGuestContent,
  startBackup,
  temporal,
  tree,
  tree_of,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { failureOf } from '../support/failure';
import { runWithKills } from '../support/kill-sweep';
import { WorkerProcess } from '../support/worker-process';
import { decodePayload } from '../support/payloads';

let scratch: string;
const vms: string[] = [];
const blobs: string[] = [];
const extraFiles: string[] = [];

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-safe-'));
});

afterAll(async () => {
  for (const vm of vms) await forgetVm(vm);
  for (const f of extraFiles) await fs.rm(f, { force: true, recursive: true });
  for (const b of blobs) await removeRamBlob(b).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

/** A node worker of its own for one test, stopped when the test ends. */
async function withWorker<T>(
  nodeName: string,
  env: Record<string, string>,
  fn: (w: WorkerProcess) => Promise<T>,
): Promise<T> {
  const worker = await WorkerProcess.start(['node', '--node', nodeName], env);
  try {
    return await fn(worker);
  } finally {
    await worker.stop();
  }
}

/** Size and mtime of each disk, libvirt's view of the VM, and every retain/backup/RAM-disk file of it. */
async function footprint(vm: SandboxVm) {
  const files = await Promise.all(
    vm.disks.map(async (d) => {
      const s = await fs.stat(d.file);
      return `${d.file} ${s.ino} ${s.size} ${s.mtimeMs}`;
    }),
  );
  const elsewhere = [
    ...(await tree_of(roots.retain)),
    ...(await tree_of(roots.backup)),
    ...(await tree_of(roots.ramDisk)),
  ].filter((f) => f.includes(vm.name));
  return {
    state: await virsh.state(vm.name),
    sources: await virsh.diskSources(vm.name),
    files,
    elsewhere,
    siblings: await siblingsOf(vm),
  };
}

/** Files next to the VM's images that carry an image's name (overlays, `.tmp`, …). */
async function siblingsOf(vm: SandboxVm): Promise<string[]> {
  const out: string[] = [];
  for (const d of vm.disks) {
    const base = path.basename(d.file);
    for (const f of await fs.readdir(path.dirname(d.file)))
      if (f.startsWith(`${base}.`)) out.push(path.join(path.dirname(d.file), f));
  }
  return out.sort();
}

/**
 * A VM a backup did not (or not yet) change: it runs, QEMU holds the image at each live path
 * open, the guest reads everything it wrote (and its RAM still holds the blob), no overlay or
 * retained, RAM-disk file of it is left anywhere.
 */
async function expectRunsAsBefore(
  vm: SandboxVm,
  written: GuestWrite[][],
  opts: { blob?: RamBlob | undefined; backing?: Array<string | undefined>; ramDiskRoots?: string[] } = {},
) {
  expect(await virsh.state(vm.name)).toBe('running');
  const held = await qemuOpenFiles(vm.name, node.libvirtRunDir);
  for (const [i, d] of vm.disks.entries()) {
    expect(held.has((await inodeOf(d.file))!), `QEMU has ${d.file} open`).toBe(true);
    expect(await backingFileOf(d.file)).toBe(opts.backing?.[i]);
    for (const w of written[i] ?? [])
      expect(await guestReads(vm.name, i, w), `guest reads ${w.pattern}`).toBe(true);
  }
  if (opts.blob) expect(await blobRangeSha256(virsh, vm.name, opts.blob)).toBe(opts.blob.sha256);
  expect(
    (await siblingsOf(vm)).filter((f) => f.includes('.vmbackup-overlay')),
    'no overlay left next to the images',
  ).toEqual([]);
  expect((await tree_of(roots.retain)).filter((f) => f.includes(vm.name))).toEqual([]);
  for (const root of [roots.ramDisk, ...(opts.ramDiskRoots ?? [])])
    expect((await tree_of(root)).filter((f) => f.includes(vm.name))).toEqual([]);
}

async function leafOf(vm: string, runDate: string) {
  return (await leaves(vm)).find((l) => l.runDate === runDate);
}

/** Waits for a file the node worker writes (a pause point's `.reached`). */
async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** A finished backup holds what the guest wrote, byte for byte, and the leaf says finished. */
async function expectBackupOf(vm: SandboxVm, written: GuestWrite[][], result: BackupVmResult) {
  for (const [i, d] of vm.disks.entries()) {
    const expected = await expectedDisk(scratch, `${vm.name}-${d.target}`, SANDBOX_DISK_SIZE, written[i]!);
    const saved = path.join(result.backupDir, `${path.basename(d.file)}.${result.runDate}`);
    expect(await sameGuestContent(expected, saved), `backup of ${d.target} equals the guest's disk`).toBe(
      true,
    );
  }
  expect(await leafOf(vm.name, result.runDate)).toMatchObject({ mode: 'finished', returnValue: 0 });
}

interface HeldSave {
  /** Resolves once libvirt's I/O helper is stopped (or found gone). */
  stopped: Promise<void>;
  /** Resolves once it runs again. */
  released: Promise<void>;
  stoppedAt?: { state?: string | undefined; reason?: string | undefined; job?: string | undefined };
  /** Heartbeat details of the retried snapshot while the save was held. */
  seen: Array<{ waiting?: string; action?: string }>;
}

/** `PENDING_ACTIVITY_STATE_STARTED`: a worker runs the attempt. */
const STARTED = 2;

/** Milliseconds of a protobuf timestamp (0 when absent). */
function msOf(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  if (!t) return 0;
  const s = t.seconds as { toNumber(): number } | number | null | undefined;
  const secs = typeof s === 'number' ? s : (s?.toNumber() ?? 0);
  return secs * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** The `Job type` of `virsh domjobinfo` (`Unbounded`, `Completed`, `None`), or the error. */
async function jobType(vm: string): Promise<string> {
  const out = await run('virsh', ['-q', '-c', process.env['LIBVIRT_URI']!, 'domjobinfo', '--', vm]).catch(
    (err: unknown) => `error ${(err as Error).message}`,
  );
  return /^Job type:\s*(\S+)/m.exec(out)?.[1] ?? out;
}

/** The pid of the libvirt_iohelper that writes `file` for a running `virsh save`. */
async function ioHelperOf(file: string): Promise<number | undefined> {
  const ps = await run('ps', ['-eo', 'pid=,args=']);
  for (const line of ps.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.includes('libvirt_iohelper') && m[2]!.includes(file)) return Number(m[1]);
  }
  return undefined;
}

/**
 * Holds a running `virsh save` in its last phase: once QEMU has written everything (libvirt
 * reports the job `Completed`) the I/O helper that flushes the file is stopped (SIGSTOP),
 * so the domain stays `paused (saving)`. It is let go (SIGCONT) once the retried snapshot
 * has heartbeated twice, at most after a minute.
 */
function holdSaveUntilRetryLooks(vm: string, file: string, handle: WorkflowHandle): HeldSave {
  let stopped!: () => void;
  const held: HeldSave = {
    stopped: new Promise<void>((resolve) => (stopped = resolve)),
    released: Promise.resolve(),
    seen: [],
  };
  held.released = (async () => {
    let pid: number | undefined;
    try {
      const until = Date.now() + 30_000;
      while (Date.now() < until && (await jobType(vm)) !== 'Completed') await sleep(50);
      pid = await ioHelperOf(file);
      if (pid) process.kill(pid, 'SIGSTOP');
      const s = await virsh.stateWithReason(vm);
      held.stoppedAt = { state: s?.state, reason: s?.reason, job: await jobType(vm) };
      stopped();
      if (!pid) return;
      const giveUp = Date.now() + 60_000;
      let last = 0;
      while (Date.now() < giveUp && held.seen.length < 2) {
        for (const a of (await handle.describe()).raw.pendingActivities ?? []) {
          // Only heartbeats of the retried attempt: Temporal keeps the killed one's last details.
          if (a.activityType?.name !== 'snapshot' || (a.attempt ?? 0) < 2 || a.state !== STARTED) continue;
          const p = a.heartbeatDetails?.payloads?.[0];
          const beat = msOf(a.lastHeartbeatTime);
          if (!p || beat <= msOf(a.lastStartedTime) || beat === last) continue;
          const d = await decodePayload<{ waiting?: string; action?: string }>(p);
          if (!d.waiting && !d.action) continue;
          last = beat;
          held.seen.push(d);
        }
        await sleep(200);
      }
    } finally {
      stopped();
      if (pid) process.kill(pid, 'SIGCONT');
    }
  })();
  return held;
}

describe('a snapshot never backs up less than the VM has, nor leaves it on a moved or half-made disk', () => {
  it('refuses (code 33, naming vdb) a VM whose second disk libvirt has and the directory lacks, and changes nothing', async () => {
    const NODE = 'vmbt-node-safe1';
    const name = 'vmbt-safe-nodir';
    vms.push(name);
    const t = performance.now();
    await withWorker(NODE, {}, async () => {
      const vm = await createVm({ name, node: NODE, disks: 2 });
      const written: GuestWrite[][] = [[], []];
      await guestWrite(name, 0, { pattern: 0x41, offset: 0, length: MiB }, written[0]);
      await guestWrite(name, 1, { pattern: 0x42, offset: 2 * MiB, length: MiB }, written[1]);
      await withDirectory(directory, (dir) => dir.del(`sstDisk=vdb,${tree.devices(name)}`));
      const before = await footprint(vm);

      const runDate = nextRunDate();
      const f = await failureOf(startBackup(name, runDate).then((h) => h.result()));
      expect(f.code).toBe(ErrorCode.directoryXmlInconsistency);
      expect(f.message).toMatch(/\bvdb\b/);
      expect(f.message).toMatch(/not in the directory/);

      expect(await footprint(vm)).toEqual(before);
      await expectRunsAsBefore(vm, written);
      const leaf = await leafOf(name, runDate);
      expect(leaf?.mode).not.toBe('finished');
      expect(leaf?.returnValue).toBe(ErrorCode.directoryXmlInconsistency);
    });
    console.log(`[4a] missing directory disk: ${seconds(t)} s`);
  }, 300_000);

  it('refuses (code 39) a VM whose live image is backed by a template outside the retain root, and leaves the chain as it was', async () => {
    const NODE = 'vmbt-node-safe2';
    const name = 'vmbt-safe-tpl';
    vms.push(name);
    const t = performance.now();
    await withWorker(NODE, {}, async () => {
      const vm = await createVm({ name, node: NODE, disks: 1, running: false });
      const disk = vm.disks[0]!.file;
      const template = path.join(path.dirname(disk), `${name}-template.qcow2`);
      extraFiles.push(template);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', template, String(SANDBOX_DISK_SIZE)]);
      // Data only the template holds: the guest must still read it through the chain afterwards.
      const fromTemplate: GuestWrite = { pattern: 0x7e, offset: 8 * MiB, length: MiB };
      await run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x7e ${8 * MiB} ${MiB}`, template]);
      await run('qemu-img', ['rebase', '-u', '-F', 'qcow2', '-b', template, '--', disk]);
      expect(await backingFileOf(disk)).toBe(template);
      await virsh.start(name);
      const written: GuestWrite[][] = [[fromTemplate]];
      await guestWrite(name, 0, { pattern: 0x43, offset: 0, length: MiB }, written[0]);
      const before = await footprint(vm);

      const runDate = nextRunDate();
      const f = await failureOf(startBackup(name, runDate).then((h) => h.result()));
      expect(f.code).toBe(ErrorCode.unsupportedConfigurationValue);
      expect(f.message).toContain(`backed by ${template}`);
      expect(f.message).toMatch(/would not restore/);

      expect(await footprint(vm)).toEqual(before);
      await expectRunsAsBefore(vm, written, { backing: [template] });
      const leaf = await leafOf(name, runDate);
      expect(leaf?.mode).not.toBe('finished');
      expect(leaf?.returnValue).toBe(ErrorCode.unsupportedConfigurationValue);
    });
    console.log(`[4b] template-backed disk: ${seconds(t)} s`);
  }, 300_000);

  it('a shut-off VM started between the state check and the disk rename: the snapshot sees QEMU on the moved image, refuses and rolls back; the VM keeps running on its image at the live path', async () => {
    const NODE = 'vmbt-node-safe3';
    const name = 'vmbt-safe-race';
    vms.push(name);
    const barrier = path.join(scratch, 'race');
    await fs.mkdir(barrier, { recursive: true });
    const t = performance.now();
    await withWorker(
      NODE,
      {
        VMBACKUP_PAUSEPOINTS: 'snapshot:move-disk:before,rollback:move-back:before',
        VMBACKUP_FAILPOINT_DIR: barrier,
      },
      async () => {
        const vm = await createVm({ name, node: NODE, disks: 1, running: false });
        const disk = vm.disks[0]!.file;
        const imageInode = await inodeOf(disk);
        const runDate = nextRunDate();
        const handle = await startBackup(name, runDate);
        const ended = handle.result().then(
          () => undefined,
          (err: unknown) => err,
        );

        await waitForFile(path.join(barrier, 'snapshot_move-disk_before.reached'), 120_000);
        // The snapshot decided to move the disk of a VM that was off; now it runs and writes.
        await virsh.start(name);
        const afterStart: GuestWrite = { pattern: 0x5a, offset: MiB, length: 2 * MiB };
        await guestWrite(name, 0, afterStart);
        await fs.writeFile(path.join(barrier, 'snapshot_move-disk_before.go'), '');

        // The rollback is about to move the image back: the snapshot did move it, and QEMU
        // writes to it in the retain directory.
        await waitForFile(path.join(barrier, 'rollback_move-back_before.reached'), 120_000);
        const retained = path.join(
          roots.retain,
          'vm-persistent',
          'sandbox-pool',
          name,
          runDate,
          `${path.basename(disk)}.${runDate}`,
        );
        expect(existsSync(disk)).toBe(false);
        expect(await inodeOf(retained)).toBe(imageInode);
        expect((await qemuOpenFiles(name, node.libvirtRunDir)).has(imageInode!)).toBe(true);
        const whileMoved: GuestWrite = { pattern: 0x61, offset: 3 * MiB, length: MiB };
        await guestWrite(name, 0, whileMoved);
        await fs.writeFile(path.join(barrier, 'rollback_move-back_before.go'), '');

        const err = await ended;
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const f = await failureOf(Promise.reject(err as Error));
        expect(f.code).toBe(ErrorCode.wrongStateInformation);
        expect(f.message).toMatch(/started while its disks were being swapped/);
        console.log(`[5] race: refused with ${f.code}: ${f.message}`);

        // Still the very image the VM was created with, at its live path, held by QEMU.
        expect(await inodeOf(disk)).toBe(imageInode);
        await expectRunsAsBefore(vm, [[afterStart, whileMoved]]);
        const later: GuestWrite = { pattern: 0x6b, offset: 4 * MiB, length: MiB };
        await guestWrite(name, 0, later);
        expect(await guestReads(name, 0, later)).toBe(true);
        expect(await guestReads(name, 0, afterStart)).toBe(true);
        expect(await backingFileOf(disk)).toBeUndefined();
        expect(await tree_of(roots.backup)).not.toContainEqual(expect.stringContaining(name));
        const leaf = await leafOf(name, runDate);
        expect(leaf?.mode).not.toBe('finished');
        expect(leaf?.returnValue).toBe(ErrorCode.wrongStateInformation);
      },
    );
    console.log(`[5] shut-off VM started during the snapshot: ${seconds(t)} s`);
  }, 300_000);

  it('a worker killed 700 ms into the save of 768 MiB of RAM, the save held in its final flush: the retry waits for libvirt to finish that save, never saves again, and the backup completes with RAM and disk intact', async () => {
    const NODE = 'vmbt-node-safe4';
    const name = 'vmbt-safe-kill';
    vms.push(name);
    const blob = await ensureRamBlob('vmbt-safe-768m', 768 * MiB);
    blobs.push(blob.name);
    // The save's final flush must take a while to be held in it: a "RAM disk" on a real
    // disk here (the dev RAM disk is a tmpfs, where the flush is instant).
    const slowRamDisk = path.join(roots.retain, 'vmbt-ramdisk-on-disk');
    await fs.mkdir(slowRamDisk, { recursive: true });
    extraFiles.push(slowRamDisk);
    const vm = await createVm({
      name,
      node: NODE,
      disks: 1,
      memoryMiB: 1024,
      ramData: blob,
      ramDisk: slowRamDisk,
    });
    await blankRamLoaders(name, blob);
    expect(await blobRangeSha256(virsh, name, blob)).toBe(blob.sha256);
    const written: GuestWrite[][] = [[]];
    await guestWrite(name, 0, { pattern: 0x3c, offset: 3 * MiB, length: 4 * MiB }, written[0]);

    const runDate = nextRunDate();
    const stateFile = path.join(slowRamDisk, name, `${name}.state.${runDate}`);
    const dir = path.join(scratch, 'kill');
    let handle: WorkflowHandle | undefined;
    let whileDead: { state?: string; reason?: string; ino?: number; birth?: number } | undefined;
    let held: HeldSave | undefined;
    const t = performance.now();
    const out = await runWithKills<BackupVmResult>({
      node: NODE,
      dir,
      points: ['snapshot:save-state:during'],
      env: { VMBACKUP_FAILPOINT_DELAY_MS: '700' },
      start: async () => (handle = await startBackup(name, runDate)),
      whileDead: async () => {
        const s = await virsh.stateWithReason(name);
        const st = await fs.stat(stateFile).catch(() => undefined);
        whileDead = { state: s?.state, reason: s?.reason, ino: st?.ino, birth: st?.birthtimeMs };
        // The retry comes a heartbeat timeout later, when libvirtd would be done: keep its
        // save in the last phase (data written, file being flushed, domain `paused (saving)`)
        // until the retried snapshot has looked at it.
        held = holdSaveUntilRetryLooks(name, stateFile, handle!);
        await held.stopped;
      },
    });
    const h = held!;
    await h.released;
    console.log(
      `[3] kill during save: ${seconds(t)} s, while dead: ${JSON.stringify(whileDead)}, held at ${JSON.stringify(h.stoppedAt)}, the retry saw: ${JSON.stringify(h.seen)}`,
    );
    expect(out.error, String(out.error)).toBeUndefined();
    // The worker died by SIGKILL (runWithKills accepts no other exit) at the armed point, once.
    expect(out.kills).toBe(1);
    expect(out.fired).toEqual(['snapshot:save-state:during']);
    expect(existsSync(path.join(dir, 'snapshot_save-state_during.fired'))).toBe(true);
    // It died while libvirtd was saving, and the file libvirtd was writing then existed.
    expect(whileDead).toMatchObject({ state: 'paused', reason: 'saving' });
    expect(whileDead?.ino).toBeDefined();
    // The retried snapshot found the save still running and waited for it.
    expect(h.stoppedAt).toMatchObject({ state: 'paused', reason: 'saving', job: 'Completed' });
    expect(h.seen).toContainEqual(expect.objectContaining({ waiting: expect.stringMatching(/Save job/) }));
    expect(h.seen.map((d) => d.action).filter(Boolean)).toEqual([]);
    const result = out.result!;
    console.log(`[3] downtime ${result.downtimeMs} ms, snapshot ${result.snapshotMs} ms`);
    const saved = path.join(result.backupDir, `${name}.state.${runDate}`);
    const st = await fs.stat(saved);
    expect(st.size).toBeGreaterThan(700 * MiB);
    // The very file that save wrote (renamed on one filesystem all the way): not saved a second time.
    expect({ ino: st.ino, birth: st.birthtimeMs }).toEqual({ ino: whileDead!.ino, birth: whileDead!.birth });

    await expectRunsAsBefore(vm, written, { blob });
    await expectBackupOf(vm, written, result);
  }, 900_000);

  it('two VMs whose saved states together overflow the RAM disk: both are backed up, their saves one after the other, nothing breaks; a VM that fails anyway fails cleanly within seconds', async () => {
    const NODE = 'vmbt-node-safe5';
    const names = ['vmbt-safe-ram1', 'vmbt-safe-ram2'];
    vms.push(...names);
    const mount = path.join(roots.ramDisk, 'vmbt-safe-tmpfs');
    await fs.mkdir(mount, { recursive: true });
    // One state (~165 MB) fits, two do not; each snapshot's check wants 256 MiB × 1.1 + 16 MiB free.
    await run('mount', ['-t', 'tmpfs', '-o', 'size=320m,mode=0755', 'tmpfs', mount]);
    try {
      const blob = await ensureRamBlob('vmbt-safe-160m', 160 * MiB);
      blobs.push(blob.name);
      const t = performance.now();
      await withWorker(NODE, {}, async () => {
        const created: SandboxVm[] = [];
        const written: GuestWrite[][][] = [];
        for (const [i, name] of names.entries()) {
          created.push(
            await createVm({
              name,
              node: NODE,
              disks: 1,
              memoryMiB: 256,
              ramData: blob,
              planOverrides: { sstBackupRamDiskLocation: `file://${mount}` },
            }),
          );
          await blankRamLoaders(name, blob);
          const w: GuestWrite[][] = [[]];
          await guestWrite(name, 0, { pattern: 0x50 + i, offset: i * MiB, length: 2 * MiB }, w[0]);
          written.push(w);
        }
        for (const name of names) expect(await blobRangeSha256(virsh, name, blob)).toBe(blob.sha256);

        const runDate = nextRunDate();
        const started = performance.now();
        const res = await backupMany(names, runDate);
        console.log(`[2] backupMany of two VMs: ${seconds(started)} s`);
        const c = await temporal();
        let failures = 0;
        for (const [i, r] of res.results.entries()) {
          const vm = created[i]!;
          const d = await c.workflow.getHandle(vmWorkflowId(vm.name)).describe();
          const took = (d.closeTime!.getTime() - d.startTime.getTime()) / 1000;
          console.log(
            `[2] ${vm.name}: ${r.outcome} after ${took.toFixed(1)} s${r.outcome === 'failed' ? ` (code ${r.errorCode}: ${r.message.replace(/\s+/g, ' ')})` : ''}`,
          );
          if (r.outcome === 'backed-up') {
            await expectRunsAsBefore(vm, written[i]!, { blob, ramDiskRoots: [mount] });
            await expectBackupOf(vm, written[i]!, r);
            const state = await fs.stat(path.join(r.backupDir, `${vm.name}.state.${runDate}`));
            expect(state.size).toBeGreaterThan(160 * MiB);
          } else {
            failures++;
            expect(r.outcome).toBe('failed');
            if (r.outcome !== 'failed') continue;
            expect([ErrorCode.cannotSaveState, ErrorCode.ramDiskTooSmall]).toContain(r.errorCode);
            // Failing is quick: no minutes of retries of a full RAM disk.
            expect(took).toBeLessThan(60);
            await expectRunsAsBefore(vm, written[i]!, { blob, ramDiskRoots: [mount] });
            expect(await tree_of(roots.backup)).not.toContainEqual(expect.stringContaining(vm.name));
            const leaf = await leafOf(vm.name, runDate);
            expect(leaf?.mode).not.toBe('finished');
            expect(leaf?.returnValue).toBe(r.errorCode);
          }
        }
        // The node admits a save only when its state fits beside the others: both fit in turn.
        expect(failures).toBe(0);
        expect(res.saves?.maxConcurrent).toBe(1);
        // Nothing of either VM is left on the RAM disk.
        expect(await tree_of(mount)).toEqual([]);
      });
      console.log(`[2] RAM disk overflow: ${seconds(t)} s`);
    } finally {
      for (const name of names) await removeVm(name).catch(() => undefined);
      await run('umount', [mount]).catch(() => undefined);
      await fs.rmdir(mount).catch(() => undefined);
    }
  }, 600_000);
});
