/**
 * `npm run bench` (second part): live mode against save mode and against the seed's bare
 * commands, on VMs whose RAM holds a random blob, with libvirt's lifecycle events as the
 * clock (the pause is from the first `Suspended`/`Stopped` event to the last
 * `Resumed`/`Started` one).
 *
 * For each VM size (BENCH_SIZES, default `256:192,1536:1024` = MiB of RAM : MiB of data),
 * BENCH_ROUNDS rounds (default 3), each from a freshly booted VM:
 *   seed        virsh save → mv → qemu-img create → virsh restore (state on the RAM disk);
 *   save        the project's snapshot in save mode, then its merge and retain;
 *   live        the project's snapshot in live mode, memory file on the RAM disk (tmpfs);
 *   live-disk   the same with the memory file in the retain directory (on disk).
 * Each disk holds 48 MiB of data; between snapshot and merge the guest writes 8 MiB; the
 * bench reports the bytes QEMU wrote to the live images over the whole backup
 * (/proc/<qemu>/io write_bytes), against the disk's allocated size. Then six VMs of one node in one run (BENCH_GROUP_MIB, default 256:192),
 * live (one group) and save: the spread of their pause instants and each pause.
 * Writes .dev/bench-live.json. Needs `.dev/env` (scripts/bench.sh sources it).
 */
import { promises as fs } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { merge } from '../src/activities/node/merge';
import { retain } from '../src/activities/node/retain';
import { setMaxParallelSaves } from '../src/activities/node/save-slots';
import { snapshot } from '../src/activities/node/snapshot';
import type { SnapshotInput, VmRunInput } from '../src/activities/node/types';
import { withDirectory } from '../src/directory/connection';
import { exportVmLdif, readPlan, readVm } from '../src/directory/vm-directory';
import { ensureRamBlob } from '../src/dev/guest-ram';
import { createSandboxVm, removeSandboxVm } from '../src/dev/sandbox-vm';
import { pauseSpreadMs } from '../src/domain/live-group';
import { formatRunDate } from '../src/domain/names';
import type { BackupPlan } from '../src/domain/plan';
import { onLifecycleEvents } from '../src/hypervisor/lifecycle';
import { run } from '../src/hypervisor/run';
import { execa } from 'execa';
import { benchSetting } from './setting';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const OUT_FILE = path.join(REPO, '.dev', 'bench-live.json');
const NODE = 'bench-node';
const MiB = 1024 * 1024;
const GUEST_WRITE = { pattern: 0x6b, offset: 16 * MiB, length: 8 * MiB };
const SETTLE_MS = 2000;
/** What each bench VM's disk holds before its backups (of its 64 MiB). */
const DISK_DATA_MIB = 48;

type Method = 'seed' | 'save' | 'live' | 'live-disk';
const METHODS: Method[] = ['seed', 'save', 'live', 'live-disk'];

function sizes(raw: string, name: string): Array<{ memoryMiB: number; dataMiB: number }> {
  return raw.split(',').map((pair) => {
    const [m, d] = pair.split(':').map(Number);
    if (!m || !d || d >= m)
      throw new Error(`${name}: sizes are RAM:data in MiB with data < RAM, got ${pair}`);
    return { memoryMiB: m, dataMiB: d };
  });
}

const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Lifecycle events of some domains, by libvirt's clock. */
async function collectEvents(uri: string) {
  const child = execa('virsh', ['-q', '-c', uri, 'event', '--event', 'lifecycle', '--loop', '--timestamp'], {
    reject: false,
    buffer: false,
    env: { LC_ALL: 'C' },
  });
  const events: Array<{ vm: string; at: number; event: string }> = [];
  onLifecycleEvents(child.stdout, (e) => events.push(e));
  await sleep(1000);
  return {
    events,
    /** The pause of `vm` since `since` (epoch ms): first stop to last start again. */
    pause(vm: string, since: number): { from: number; to: number } | undefined {
      const mine = events.filter((e) => e.vm === vm && e.at >= since);
      const from = mine.find((e) => e.event === 'Suspended' || e.event === 'Stopped')?.at;
      const to = [...mine].reverse().find((e) => e.event === 'Resumed' || e.event === 'Started')?.at;
      return from !== undefined && to !== undefined && to >= from ? { from, to } : undefined;
    },
    stop: async () => {
      child.kill('SIGKILL');
      await child;
    },
  };
}

async function qemuWriteBytes(runDir: string, vm: string): Promise<number> {
  const pid = (await fs.readFile(path.join(runDir, `${vm}.pid`), 'utf8')).trim();
  const io = await fs.readFile(`/proc/${pid}/io`, 'utf8');
  return Number(/^write_bytes:\s*(\d+)/m.exec(io)?.[1] ?? 0);
}

async function main(): Promise<void> {
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? '3');
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('BENCH_ROUNDS must be a positive integer');
  const vmSizes = sizes(process.env['BENCH_SIZES'] ?? '256:192,1536:1024', 'BENCH_SIZES');
  const groupSize = sizes(process.env['BENCH_GROUP_MIB'] ?? '256:192', 'BENCH_GROUP_MIB')[0]!;
  const { directory, node, roots, deps, guest, tree, inActivity } = benchSetting();
  const virsh = deps.virsh;
  const uri = node.libvirtUri;
  setMaxParallelSaves(8);
  const events = await collectEvents(uri);
  let clock = Math.floor(Date.now() / 1000);
  const nextRunDate = () => formatRunDate(new Date(clock++ * 1000));

  const ramFs = (await run('findmnt', ['-n', '-o', 'FSTYPE', '-T', roots.ramDisk])).trim();
  console.log(
    `live bench: ${rounds} rounds per size, RAM disk ${roots.ramDisk} (${ramFs}), ${availableParallelism()} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  async function makeVm(name: string, memoryMiB: number, dataMiB: number) {
    const blob = await ensureRamBlob(`bench-${dataMiB}m`, dataMiB * MiB);
    const vm = await createSandboxVm(
      { name, node: NODE, disks: 1, memoryMiB, ramData: blob, ...roots },
      { virsh, directory, node },
    );
    // A disk holding data, so that a full block pull (save mode) shows in the writes.
    await guest.write(name, 0, 0x22, 0, DISK_DATA_MIB * MiB);
    const target = await withDirectory(directory, async (dir) => {
      const record = await readVm(dir, tree, name);
      return { record, plan: await readPlan(dir, tree, record), ldif: await exportVmLdif(dir, tree, name) };
    });
    return { vm, target };
  }

  async function bootFresh(name: string) {
    const state = await virsh.state(name);
    if (state !== undefined && state !== 'shut off') await virsh.destroy(name);
    await virsh.start(name);
    await sleep(SETTLE_MS);
    await guest.write(name, 0, 0x11, 0, MiB);
    await sleep(SETTLE_MS / 2);
  }

  /** One backup by `method`; the pause by the events, QEMU's writes to the live images. */
  async function measure(name: string, t: Awaited<ReturnType<typeof makeVm>>, method: Method) {
    await bootFresh(name);
    const disk = t.vm.disks[0]!;
    const since = Date.now();
    const writesBefore = method === 'seed' ? 0 : await qemuWriteBytes(node.libvirtRunDir, name);
    if (method === 'seed') {
      const state = path.join(roots.ramDisk, `bench-seed-${name}.state`);
      const retained = path.join(roots.retainRoot, `bench-seed-${path.basename(disk.file)}`);
      await run('virsh', ['-c', uri, 'save', '--', name, state]);
      await run('mv', ['--', disk.file, retained]);
      await run('qemu-img', ['create', '-f', 'qcow2', '-F', 'qcow2', '-b', retained, disk.file]);
      await run('virsh', ['-c', uri, 'restore', '--', state]);
      await sleep(500); // the last event may trail
      const p = events.pause(name, since);
      // On current libvirt the bare sequence restores the overlay without its backing file
      // (README, Crash safety): only its pause is measured; the image is put back as it was.
      await virsh.destroy(name);
      await fs.rm(disk.file);
      await fs.rename(retained, disk.file);
      await fs.rm(state, { force: true });
      if (!p) throw new Error(`${name}: no pause seen in libvirt's events for the seed`);
      return { pauseMs: p.to - p.from, writtenBytes: NaN, allocatedBytes: NaN };
    } else {
      const plan: BackupPlan = {
        ...t.target.plan,
        mode: method === 'save' ? 'save' : 'live',
        ramDisk: method === 'live-disk' ? undefined : t.target.plan.ramDisk,
      };
      const input: VmRunInput = { vm: name, runDate: nextRunDate(), disks: t.target.record.disks, plan };
      const snap = await inActivity((i: SnapshotInput) => snapshot(deps, i), {
        ...input,
        ldif: t.target.ldif,
      });
      if ((snap.mode ?? 'save') !== plan.mode)
        throw new Error(`${name}: ${plan.mode} mode fell back: ${snap.fallback}`);
      await guest.write(name, 0, GUEST_WRITE.pattern, GUEST_WRITE.offset, GUEST_WRITE.length);
      await inActivity((i: VmRunInput) => merge(deps, i), input);
      const kept = await inActivity((i: VmRunInput) => retain(deps, i), input);
      await fs.rm(kept.backupDir, { recursive: true, force: true });
    }
    const written = (await qemuWriteBytes(node.libvirtRunDir, name)) - writesBefore;
    if (!(await guest.reads(name, 0, GUEST_WRITE.pattern, GUEST_WRITE.offset, GUEST_WRITE.length)))
      throw new Error(`${name}: the guest lost its write after the ${method} backup`);
    await sleep(500); // the last event may trail
    const p = events.pause(name, since);
    if (!p) throw new Error(`${name}: no pause seen in libvirt's events for ${method}`);
    const allocated = Number((await run('du', ['-B1', '--', disk.file])).split(/\s/)[0]);
    return { pauseMs: p.to - p.from, writtenBytes: written, allocatedBytes: allocated };
  }

  const perSize: unknown[] = [];
  const table: string[][] = [];
  for (const size of vmSizes) {
    const name = `bench-live-${size.memoryMiB}`;
    const t = await makeVm(name, size.memoryMiB, size.dataMiB);
    const figures: Record<
      Method,
      Array<{ pauseMs: number; writtenBytes: number; allocatedBytes: number }>
    > = {
      seed: [],
      save: [],
      live: [],
      'live-disk': [],
    };
    try {
      for (let r = 0; r < rounds; r++)
        for (const m of METHODS) {
          const f = await measure(name, t, m);
          figures[m].push(f);
          console.log(
            `  ${name} round ${r + 1} ${m.padEnd(9)} pause ${String(f.pauseMs).padStart(6)} ms` +
              (m === 'seed'
                ? ''
                : `, QEMU wrote ${Math.round(f.writtenBytes / MiB)} MiB (disk ${Math.round(f.allocatedBytes / MiB)} MiB allocated)`),
          );
        }
    } finally {
      await removeSandboxVm(name, { virsh, directory, node }).catch(() => undefined);
    }
    const med = (m: Method) => median(figures[m].map((f) => f.pauseMs));
    const wrote = (m: Method) => Math.round(median(figures[m].map((f) => f.writtenBytes)) / MiB);
    const row = {
      memoryMiB: size.memoryMiB,
      dataMiB: size.dataMiB,
      medianPauseMs: Object.fromEntries(METHODS.map((m) => [m, med(m)])),
      medianQemuWritesMiB: Object.fromEntries(METHODS.map((m) => [m, wrote(m)])),
      allocatedMiB: Math.round(median(figures.live.map((f) => f.allocatedBytes)) / MiB),
      ratio: {
        saveOverLive: Number((med('save') / med('live')).toFixed(1)),
        seedOverLive: Number((med('seed') / med('live')).toFixed(1)),
        liveDiskOverSave: Number((med('live-disk') / med('save')).toFixed(3)),
      },
      rounds: figures,
    };
    perSize.push(row);
    table.push([
      `${size.memoryMiB}/${size.dataMiB}`,
      ...METHODS.map((m) => String(med(m))),
      String(row.ratio.saveOverLive),
      String(row.ratio.liveDiskOverSave),
      `${wrote('save')} / ${wrote('live')} (${row.allocatedMiB})`,
    ]);
  }

  // Six VMs of one node in one run: live (one group) and save.
  const group: Record<'live' | 'save', { spreadMs: number; pausesMs: number[] }> = {
    live: { spreadMs: 0, pausesMs: [] },
    save: { spreadMs: 0, pausesMs: [] },
  };
  const names = Array.from({ length: 6 }, (_, i) => `bench-group-${i + 1}`);
  const vms: Array<Awaited<ReturnType<typeof makeVm>>> = [];
  try {
    for (const n of names) vms.push(await makeVm(n, groupSize.memoryMiB, groupSize.dataMiB));
    for (const mode of ['live', 'save'] as const) {
      for (const n of names) await bootFresh(n);
      const since = Date.now();
      const runDate = nextRunDate();
      const inputs = vms.map((t, i) => ({
        vm: names[i]!,
        runDate,
        disks: t.target.record.disks,
        plan: { ...t.target.plan, mode },
      }));
      const liveGroup = { id: `bench-${runDate}-${mode}`, members: names };
      await Promise.all(
        inputs.map((i, k) =>
          inActivity((x: SnapshotInput) => snapshot(deps, x), { ...i, ldif: vms[k]!.target.ldif, liveGroup }),
        ),
      );
      for (const i of inputs) {
        await inActivity((x: VmRunInput) => merge(deps, x), i);
        const kept = await inActivity((x: VmRunInput) => retain(deps, x), i);
        await fs.rm(kept.backupDir, { recursive: true, force: true });
      }
      await sleep(500);
      const spans = names.map((n) => events.pause(n, since));
      if (spans.some((s) => !s)) throw new Error(`group ${mode}: a pause is missing from libvirt's events`);
      group[mode] = {
        spreadMs: pauseSpreadMs(spans.map((s) => s!.from)),
        pausesMs: spans.map((s) => s!.to - s!.from),
      };
      console.log(
        `  six VMs ${mode}: pause instants within ${group[mode].spreadMs} ms, pauses ${group[mode].pausesMs.join(', ')} ms`,
      );
    }
  } finally {
    for (const n of names) await removeSandboxVm(n, { virsh, directory, node }).catch(() => undefined);
    await events.stop();
  }

  console.log();
  const header = [
    'RAM/data MiB',
    'seed ms',
    'save ms',
    'live ms',
    'live-disk ms',
    'save/live',
    'live-disk/save',
    'QEMU MiB save / live (alloc)',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(line(header));
  for (const r of table) console.log(line(r));
  console.log(
    `six VMs, ${groupSize.memoryMiB}/${groupSize.dataMiB} MiB: live spread ${group.live.spreadMs} ms, max pause ${Math.max(...group.live.pausesMs)} ms; save spread ${group.save.spreadMs} ms, max pause ${Math.max(...group.save.pausesMs)} ms`,
  );
  console.log(
    '(pauses by libvirt lifecycle events; QEMU MiB: what QEMU wrote to the live images over the backup, the guest writing 8 MiB)',
  );
  const report = {
    measuredAt: new Date().toISOString(),
    cpus: availableParallelism(),
    ramDiskFs: ramFs,
    rounds,
    sizes: perSize,
    sixVms: { ...groupSize, ...group },
  };
  await fs.writeFile(OUT_FILE, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `figures written to ${path.relative(REPO, OUT_FILE)} (${Math.round(performance.now() / 1000)} s)`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
