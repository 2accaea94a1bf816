/**
 * `npm run bench`: how long a running VM is down while its backup snapshot is taken.
 *
 * One process, one sandbox VM (`bench-vm`, one qcow2 disk, 512 MiB of RAM of which 384 MiB
 * hold a random blob, so that the state file is of real size), BENCH_ROUNDS rounds
 * (default 5), each round measuring in turn:
 *   seed     the original's bare commands, timed from the start of `virsh save` until
 *            `virsh restore` returns: virsh save → mv disk → qemu-img create overlay →
 *            virsh restore (the state file goes to the plan's RAM disk, as in the seed);
 *   project  the project's snapshot activity, called directly (in a mocked activity
 *            context), reporting its own downtimeMs; its merge and retain clean up.
 * Each measurement starts from a freshly booted, settled VM whose guest has just written
 * a pattern through its disk; afterwards the bench checks whether the guest still reads
 * it. Besides the project's own downtimeMs it times the project's `virsh save` … `virsh
 * restore` from outside, like the seed's. Writes the figures to .dev/bench-downtime.json.
 * Needs the environment of `.dev/env` (scripts/bench.sh sources it).
 */
import { promises as fs } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { nodeDeps, resolveRun } from '../src/activities/node/context';
import { merge } from '../src/activities/node/merge';
import { retain } from '../src/activities/node/retain';
import { snapshot } from '../src/activities/node/snapshot';
import type { SnapshotInput, VmRunInput } from '../src/activities/node/types';
import { nodeConfig } from '../src/config';
import { adminDirectoryConfig } from '../src/dev/admin-directory';
import { withDirectory } from '../src/directory/connection';
import { StoneyTree } from '../src/directory/dn';
import { exportVmLdif, readPlan, readVm } from '../src/directory/vm-directory';
import { GuestIo } from '../src/dev/guest-io';
import { ensureRamBlob } from '../src/dev/guest-ram';
import { createSandboxVm, removeSandboxVm } from '../src/dev/sandbox-vm';
import { formatRunDate } from '../src/domain/names';
import { imageInfo } from '../src/hypervisor/qemu-img';
import { run } from '../src/hypervisor/run';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const OUT_FILE = path.join(REPO, '.dev', 'bench-downtime.json');
const VM = 'bench-vm';
const NODE = 'bench-node';
const MEMORY_MIB = 512;
/** Guest RAM holding data: an idle guest's zero pages would make every save look fast. */
const RAM_DATA_MIB = 384;
const MiB = 1024 * 1024;
const PATTERN = { pattern: 0x5a, offset: 0, length: 4 * MiB };
/** Pause after booting the VM before a measurement. */
const SETTLE_MS = 2000;

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (source .dev/env, or use npm run bench)`);
  return v;
}

function roundsFromEnv(): number {
  const raw = process.env['BENCH_ROUNDS'] ?? '5';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new Error(`BENCH_ROUNDS must be an integer from 1 to 1000, got ${JSON.stringify(raw)}`);
  return n;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const ms = (v: number) => Math.round(v);

interface Round {
  round: number;
  seedMs: number;
  seedDataSurvived: boolean;
  projectRunDate: string;
  /** What the snapshot activity reports as the VM's downtime. */
  projectMs: number;
  /** Start of the project's `virsh save` until its `virsh restore` returned, timed from outside. */
  projectSaveToRestoreMs: number;
  projectSnapshotStepMs: number;
  projectDataSurvived: boolean;
  /** Where the time went, in ms. */
  seedPhases: { save: number; mv: number; createOverlay: number; restore: number };
  projectPhases: { beforeSave: number; save: number; swapAndRestoreXml: number; restore: number };
}

async function main(): Promise<void> {
  const rounds = roundsFromEnv();
  // The root DN creates the bench's VM.
  const directory = adminDirectoryConfig();
  const node = nodeConfig();
  const retainRoot = need('VMBACKUP_RETAIN_ROOT');
  const backupRoot = need('VMBACKUP_BACKUP_ROOT');
  const ramDisk = need('VMBACKUP_RAMDISK');
  const deps = nodeDeps(node);
  const virsh = deps.virsh;
  const guest = new GuestIo(virsh);
  const uri = node.libvirtUri;

  // Times the project's own save and restore calls, to compare like with like.
  const window = { saveStart: 0, saveEnd: 0, restoreStart: 0, restoreEnd: 0 };
  const save = virsh.save.bind(virsh);
  const restore = virsh.restore.bind(virsh);
  virsh.save = async (vm, file) => {
    window.saveStart = performance.now();
    await save(vm, file);
    window.saveEnd = performance.now();
  };
  virsh.restore = async (file, xml, paused) => {
    window.restoreStart = performance.now();
    await restore(file, xml, paused);
    window.restoreEnd = performance.now();
  };

  // Where the seed sequence keeps its files: the state on the RAM disk, the disk in the retain root.
  const seedStateDir = path.join(ramDisk, 'bench-seed');
  const seedRetainDir = path.join(retainRoot, 'bench-seed');

  const versions = (await run('virsh', ['-c', uri, 'version']))
    .split('\n')
    .filter((l) => /Using library|Running hypervisor/.test(l))
    .map((l) => l.trim());
  console.log(
    `downtime bench: ${rounds} rounds on ${VM} (${MEMORY_MIB} MiB, ${RAM_DATA_MIB} MiB of it data, 1 disk); ${versions.join('; ')}`,
  );

  const vm = await createSandboxVm(
    {
      name: VM,
      node: NODE,
      disks: 1,
      memoryMiB: MEMORY_MIB,
      ramData: await ensureRamBlob('bench-384m', RAM_DATA_MIB * MiB),
      retainRoot,
      backupRoot,
      ramDisk,
    },
    { virsh, directory, node },
  );
  const disk = vm.disks[0]!;
  const tree = new StoneyTree(directory.baseDn);
  const target = await withDirectory(directory, async (dir) => {
    const record = await readVm(dir, tree, VM);
    return { record, plan: await readPlan(dir, tree, record), ldif: await exportVmLdif(dir, tree, VM) };
  });
  const runInput = (runDate: string): VmRunInput => ({
    vm: VM,
    runDate,
    disks: target.record.disks,
    // This bench measures save mode against the seed (bench/live.ts compares the modes).
    plan: { ...target.plan, mode: 'save' },
  });

  // Leftovers of an interrupted bench: the VM's retain, backup and RAM disk directories.
  const baseSeconds = Math.floor(Date.now() / 1000);
  const probe = resolveRun(deps, runInput(formatRunDate(new Date(baseSeconds * 1000))));
  const vmDirs = [
    path.dirname(probe.layout.retainDir),
    path.dirname(probe.layout.backupDir),
    probe.layout.stateSaveDir,
    seedStateDir,
    seedRetainDir,
  ];
  for (const d of vmDirs) await fs.rm(d, { recursive: true, force: true });
  await fs.mkdir(seedStateDir, { recursive: true });
  await fs.mkdir(seedRetainDir, { recursive: true });

  const writePattern = async () => {
    await guest.write(VM, 0, PATTERN.pattern, PATTERN.offset, PATTERN.length);
    if (!(await guestReadsPattern())) throw new Error(`${VM}: the guest does not read what it just wrote`);
  };
  const guestReadsPattern = () => guest.reads(VM, 0, PATTERN.pattern, PATTERN.offset, PATTERN.length);
  /**
   * Every measurement starts from a freshly booted VM holding the pattern, so that neither
   * approach saves a VM that the other one has just restored.
   */
  const bootFresh = async () => {
    const state = await virsh.state(VM);
    if (state !== undefined && state !== 'shut off') await virsh.destroy(VM);
    await virsh.start(VM);
    // Let the firmware finish its boot attempts and idle, as a long-running guest would.
    await sleep(SETTLE_MS);
    await writePattern();
    // A save right after monitor I/O took about 250 ms longer here than one a moment later.
    await sleep(SETTLE_MS / 2);
  };

  /** (a) The seed's bare sequence, then whatever brings the VM back to one standalone disk. */
  const seedRound = async () => {
    const state = path.join(seedStateDir, `${VM}.state`);
    const retained = path.join(seedRetainDir, path.basename(disk.file));
    await bootFresh();
    const t0 = performance.now();
    await run('virsh', ['-c', uri, 'save', '--', VM, state]);
    const t1 = performance.now();
    await run('mv', ['--', disk.file, retained]);
    const t2 = performance.now();
    await run('qemu-img', ['create', '-f', 'qcow2', '-F', 'qcow2', '-b', retained, disk.file]);
    const t3 = performance.now();
    await run('virsh', ['-c', uri, 'restore', '--', state]);
    const t4 = performance.now();
    const elapsed = t4 - t0;
    const phases = { save: ms(t1 - t0), mv: ms(t2 - t1), createOverlay: ms(t3 - t2), restore: ms(t4 - t3) };
    const survived = await guestReadsPattern();
    if (survived) {
      await run('virsh', ['-c', uri, 'blockpull', '--', VM, disk.target, '--wait']);
      const backing = (await imageInfo(disk.file)).backingFilename;
      if (backing) throw new Error(`seed cleanup: ${disk.file} still has backing file ${backing}`);
    } else {
      // QEMU opened the overlay without its backing file: blockpull has nothing to pull.
      // Put the retained image back as the live disk; the next round boots the VM on it.
      await virsh.destroy(VM);
      await fs.rm(disk.file);
      await fs.rename(retained, disk.file);
    }
    await fs.rm(retained, { force: true });
    await fs.rm(state, { force: true });
    return { ms: elapsed, survived, phases };
  };

  const activity = new MockActivityEnvironment();
  // MockActivityEnvironment.run cannot infer the result type from the function.
  const inActivity = <A, R>(fn: (input: A) => Promise<R>, input: A) => activity.run(fn, input) as Promise<R>;

  /** (b) The project's snapshot, then its merge and retain; the backup itself is discarded. */
  const projectRound = async (runDate: string) => {
    await bootFresh();
    Object.assign(window, { saveStart: 0, saveEnd: 0, restoreStart: 0, restoreEnd: 0 });
    const input: SnapshotInput = { ...runInput(runDate), ldif: target.ldif };
    const snap = await inActivity((i: SnapshotInput) => snapshot(deps, i), input);
    if (!window.saveStart || !window.restoreEnd)
      throw new Error(`the snapshot of ${VM} did not save and restore the VM`);
    const saveToRestore = window.restoreEnd - window.saveStart;
    const phases = {
      beforeSave: ms(snap.downtimeMs - saveToRestore),
      save: ms(window.saveEnd - window.saveStart),
      swapAndRestoreXml: ms(window.restoreStart - window.saveEnd),
      restore: ms(window.restoreEnd - window.restoreStart),
    };
    const survived = await guestReadsPattern();
    await inActivity((i: VmRunInput) => merge(deps, i), runInput(runDate));
    const kept = await inActivity((i: VmRunInput) => retain(deps, i), runInput(runDate));
    const backing = (await imageInfo(disk.file)).backingFilename;
    if (backing) throw new Error(`after merge ${disk.file} still has backing file ${backing}`);
    await fs.rm(kept.backupDir, { recursive: true, force: true });
    return { snap, saveToRestore, survived, phases };
  };

  const loadBefore = loadavg();
  const results: Round[] = [];
  const head = `${'round'.padEnd(6)}${'seed ms'.padStart(9)}  ${'seed data'.padEnd(10)}${'project ms'.padStart(11)}  ${'project data'.padEnd(13)}${'project save→restore ms'.padStart(24)}`;
  console.log(head);
  try {
    for (let i = 0; i < rounds; i++) {
      const seed = await seedRound();
      if (!seed.survived) console.log('  seed sequence: guest data lost after restore');
      const runDate = formatRunDate(new Date((baseSeconds + i) * 1000));
      const project = await projectRound(runDate);
      if (!project.survived) console.log('  project snapshot: guest data lost after restore');
      const r: Round = {
        round: i + 1,
        seedMs: ms(seed.ms),
        seedDataSurvived: seed.survived,
        projectRunDate: runDate,
        projectMs: project.snap.downtimeMs,
        projectSaveToRestoreMs: ms(project.saveToRestore),
        projectSnapshotStepMs: project.snap.snapshotMs,
        projectDataSurvived: project.survived,
        seedPhases: seed.phases,
        projectPhases: project.phases,
      };
      results.push(r);
      console.log(
        `${String(r.round).padEnd(6)}${String(r.seedMs).padStart(9)}  ${(r.seedDataSurvived ? 'kept' : 'LOST').padEnd(10)}${String(r.projectMs).padStart(11)}  ${(r.projectDataSurvived ? 'kept' : 'LOST').padEnd(13)}${String(r.projectSaveToRestoreMs).padStart(24)}`,
      );
    }
  } finally {
    await removeSandboxVm(VM, { virsh, directory, node }).catch((err: unknown) =>
      console.error(`cleanup: cannot remove ${VM}: ${(err as Error).message}`),
    );
    for (const d of vmDirs) await fs.rm(d, { recursive: true, force: true });
  }

  const medSeed = median(results.map((r) => r.seedMs));
  const medProject = median(results.map((r) => r.projectMs));
  const medWindow = median(results.map((r) => r.projectSaveToRestoreMs));
  const seedKept = results.filter((r) => r.seedDataSurvived).length;
  const projectKept = results.filter((r) => r.projectDataSurvived).length;
  const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
  console.log();
  console.log(`median seed:                      ${medSeed} ms`);
  console.log(`median project (its downtimeMs):  ${medProject} ms`);
  console.log(`median project save→restore:      ${medWindow} ms`);
  console.log(
    `seed/project ${ratio(medSeed, medProject)}, project/seed ${ratio(medProject, medSeed)}` +
      ` (save→restore: seed/project ${ratio(medSeed, medWindow)}, project/seed ${ratio(medWindow, medSeed)})`,
  );
  const phaseMedians = <K extends string>(pick: (r: Round) => Record<K, number>) =>
    Object.fromEntries(
      (Object.keys(pick(results[0]!)) as K[]).map((k) => [k, median(results.map((r) => pick(r)[k]))]),
    ) as Record<K, number>;
  const seedPhases = phaseMedians((r) => r.seedPhases);
  const projectPhases = phaseMedians((r) => r.projectPhases);
  const show = (p: Record<string, number>) =>
    Object.entries(p)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  console.log(`median phases, seed (ms):         ${show(seedPhases)}`);
  console.log(`median phases, project (ms):      ${show(projectPhases)}`);
  console.log('  (project beforeSave: counted in its downtimeMs, but the VM still runs then)');
  console.log(
    `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (${availableParallelism()} CPUs)`,
  );
  console.log(
    `guest data survived: seed ${seedKept}/${rounds} rounds, project ${projectKept}/${rounds} rounds`,
  );
  if (seedKept < rounds) console.log('seed sequence: guest data lost after restore');

  const report = {
    measuredAt: new Date().toISOString(),
    vm: {
      name: VM,
      memoryMiB: MEMORY_MIB,
      ramDataMiB: RAM_DATA_MIB,
      disks: 1,
      diskBytesWritten: PATTERN.length,
    },
    hypervisor: versions,
    loadAverage: { before: loadBefore, after: loadavg(), cpus: availableParallelism() },
    rounds: results,
    median: {
      seedMs: medSeed,
      projectMs: medProject,
      projectSaveToRestoreMs: medWindow,
      seedPhases,
      projectPhases,
    },
    ratio: {
      seedOverProject: ratio(medSeed, medProject),
      projectOverSeed: ratio(medProject, medSeed),
      seedOverProjectSaveToRestore: ratio(medSeed, medWindow),
      projectSaveToRestoreOverSeed: ratio(medWindow, medSeed),
    },
    dataSurvived: {
      seed: results.map((r) => r.seedDataSurvived),
      project: results.map((r) => r.projectDataSurvived),
    },
  };
  await fs.writeFile(OUT_FILE, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`figures written to ${path.relative(REPO, OUT_FILE)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
