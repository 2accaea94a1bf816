/**
 * `npm run demo`: an end-to-end backup on the embedded services, with real workers.
 *
 * Creates the sandbox VM `demo-vm` (two qcow2 disks) on node `demo-node`, writes a
 * pattern through the guest's disks, starts a control and a node worker as child
 * processes, backs the VM up through Temporal as `vmbackup backup demo-vm --wait` does,
 * then checks what the guest, the files and the directory show. Exits 1 when a check fails.
 * Needs the environment of `.dev/env` (scripts/demo.sh sources it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { runBackup } from '../cli/backup';
import { uiLink } from '../cli/client';
import { connectClient } from '../temporal/connect';
import { nodeConfig, temporalConfig, type TemporalConfig } from '../config';
import { adminDirectoryConfig } from './admin-directory';
import { withDirectory } from '../directory/connection';
import { StoneyTree } from '../directory/dn';
import { readLeaves } from '../directory/run-leaf';
import { imageInfo } from '../hypervisor/qemu-img';
import { run } from '../hypervisor/run';
import { Virsh } from '../hypervisor/virsh';
import type { BackupVmResult } from '../workflows/backup-vm';
import { vmWorkflowId } from '../workflows/ids';
import { GuestIo } from './guest-io';
import { createSandboxVm } from './sandbox-vm';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const VM = 'demo-vm';
const NODE = 'demo-node';
const MiB = 1024 * 1024;
/** What the demo writes through each guest disk: disk index, byte pattern, offset, length. */
const PATTERNS = [
  { disk: 0, pattern: 0x5a, offset: 0, length: 4 * MiB },
  { disk: 1, pattern: 0xc3, offset: 16 * MiB, length: 4 * MiB },
] as const;
const WORKER_READY_TIMEOUT_MS = 180_000;
const WORKER_STOP_TIMEOUT_MS = 30_000;

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (source .dev/env, or use npm run demo)`);
  return v;
}

// ------------------------------------------------------------------ output ---

const failures: string[] = [];

function say(line = ''): void {
  console.log(line);
}

function section(title: string): void {
  say();
  say(`== ${title}`);
}

function check(ok: boolean, what: string): boolean {
  say(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
  return ok;
}

function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(2)} MiB`;
}

// ----------------------------------------------------------------- workers ---

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Settles when the process has exited, with how it ended. */
  exited: Promise<string>;
  stopping: boolean;
}

const workers: WorkerProcess[] = [];

/** Starts `vmbackup worker <args>` and resolves once it prints that it is running. */
async function startWorker(name: string, args: string[], logFile: string): Promise<WorkerProcess> {
  const log = createWriteStream(logFile, { flags: 'w' });
  const child = spawn(process.execPath, [path.join(REPO, 'bin/vmbackup.mjs'), 'worker', ...args], {
    cwd: REPO,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`could not start: ${err.message}`));
    child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit code ${code}`));
  });
  void exited.then(() => log.end());
  const proc: WorkerProcess = { name, child, logFile, exited, stopping: false };
  workers.push(proc);
  let seen = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      seen = (seen + chunk.toString('utf8')).slice(-4096);
      if (/worker\b.*\brunning\b/.test(seen)) resolve();
    });
  });
  child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
  const outcome = await Promise.race([
    ready.then(() => 'ready'),
    exited.then((how) => `exited before it was ready (${how})`),
    sleep(WORKER_READY_TIMEOUT_MS).then(() => `not ready after ${WORKER_READY_TIMEOUT_MS / 1000} s`),
  ]);
  if (outcome !== 'ready') throw new Error(`${name} ${outcome}; see ${logFile}`);
  say(`  ${name} running (pid ${child.pid}, log ${path.relative(REPO, logFile)})`);
  return proc;
}

/** Rejects as soon as a worker exits that we did not stop. */
function workerDeath(): Promise<never> {
  return new Promise<never>((_, reject) => {
    for (const w of workers) {
      void w.exited.then((how) => {
        if (!w.stopping) reject(new Error(`${w.name} stopped unexpectedly (${how}); see ${w.logFile}`));
      });
    }
  });
}

async function stopWorkers(): Promise<void> {
  await Promise.all(
    workers.map(async (w) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return;
      w.stopping = true;
      w.child.kill('SIGTERM');
      const how = await Promise.race([w.exited, sleep(WORKER_STOP_TIMEOUT_MS).then(() => undefined)]);
      if (how === undefined) {
        say(`  ${w.name} did not stop within ${WORKER_STOP_TIMEOUT_MS / 1000} s of SIGTERM; killing it`);
        w.child.kill('SIGKILL');
        await w.exited;
      } else {
        say(`  ${w.name} stopped (${how})`);
      }
    }),
  );
}

// ---------------------------------------------------------------- the demo ---

/** A run of an earlier, interrupted demo would refuse the new one: end it first. */
async function endLeftoverWorkflow(client: Client, workflowId: string): Promise<void> {
  try {
    const desc = await client.workflow.getHandle(workflowId).describe();
    if (desc.status.name === 'RUNNING') {
      say(`  terminating ${workflowId} (run ${desc.runId}), left running by an earlier demo`);
      await client.workflow.getHandle(workflowId, desc.runId).terminate('leftover of an earlier demo run');
    }
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
}

async function backupImageHolds(file: string, pattern: number, offset: number, length: number) {
  const out = await run('qemu-io', [
    '-r',
    '-U',
    '-f',
    'qcow2',
    '-c',
    `read -P 0x${pattern.toString(16)} ${offset} ${length}`,
    '--',
    file,
  ]);
  return new RegExp(`read ${length}/${length} bytes`).test(out) && !/verification failed/i.test(out);
}

async function demo(): Promise<void> {
  const temporal = temporalConfig();
  const client = await connectClient(temporal);
  try {
    // Before anything else: an old run must not act on the VM the demo is about to create.
    await endLeftoverWorkflow(client, vmWorkflowId(VM));
    await demoWith(client, temporal);
  } finally {
    await client.connection.close();
  }
}

async function demoWith(client: Client, temporal: TemporalConfig): Promise<void> {
  // The root DN creates the sandbox VM; the workers bind as their own identities.
  const directory = adminDirectoryConfig();
  const node = nodeConfig();
  const virsh = new Virsh(node.libvirtUri);
  const guest = new GuestIo(virsh);
  const logDir = path.join(REPO, '.dev');
  await fs.mkdir(logDir, { recursive: true });

  section(`sandbox VM ${VM} on node ${NODE}`);
  const vm = await createSandboxVm(
    {
      name: VM,
      node: NODE,
      disks: 2,
      memoryMiB: 64,
      retainRoot: need('VMBACKUP_RETAIN_ROOT'),
      backupRoot: need('VMBACKUP_BACKUP_ROOT'),
      ramDisk: need('VMBACKUP_RAMDISK'),
    },
    { virsh, directory, node },
  );
  for (const d of vm.disks) say(`  ${d.target}: ${d.file}`);
  for (const p of PATTERNS) {
    await guest.write(VM, p.disk, p.pattern, p.offset, p.length);
    check(
      await guest.reads(VM, p.disk, p.pattern, p.offset, p.length),
      `guest wrote and reads 0x${p.pattern.toString(16)} on ${vm.disks[p.disk]!.target} at ${mib(p.offset)} (${mib(p.length)})`,
    );
  }

  section('workers');
  await startWorker('control worker', ['control'], path.join(logDir, 'demo-control-worker.log'));
  await startWorker('node worker', ['node', '--node', NODE], path.join(logDir, 'demo-node-worker.log'));

  section(`backup of ${VM} (as: vmbackup backup ${VM} --wait)`);
  const workflowId = vmWorkflowId(VM);
  const started = Date.now();
  const code = await Promise.race([
    runBackup(client, { vms: [VM], wait: true }, (line) => say(`  | ${line}`)),
    workerDeath(),
  ]);
  say(`  took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  check(code === 0, `backup command succeeded (exit code ${code})`);

  const handle = client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  const link = uiLink(temporal, workflowId, desc.runId);
  say(`  workflow ${workflowId} run ${desc.runId}: ${desc.status.name}`);
  say(`  Temporal UI: ${link ?? '(TEMPORAL_UI_URL is not set)'}`);
  let result: BackupVmResult | undefined;
  try {
    result = (await handle.result()) as BackupVmResult;
  } catch (err) {
    check(false, `workflow result: ${(err as Error).message}`);
  }
  if (!result) return;

  section('outcome');
  say(`  VM ${result.vm} on ${result.node}, run ${result.runDate}, was running: ${result.wasRunning}`);
  say(`  downtime ${result.downtimeMs} ms (${(result.downtimeMs / 1000).toFixed(2)} s)`);
  say(`  snapshot step ${result.snapshotMs} ms`);
  check(result.wasRunning && result.downtimeMs > 0, 'the VM was running and its downtime was measured');

  section(`backup directory ${result.backupDir}`);
  for (const f of (await fs.readdir(result.backupDir)).sort()) {
    const st = await fs.stat(path.join(result.backupDir, f));
    say(
      `  ${f.padEnd(48)} ${String(st.size).padStart(11)} bytes  (${mib(st.blocks * 512)} allocated)  mode ${(st.mode & 0o777).toString(8)}`,
    );
  }
  const expected = [
    `${VM}.state.${result.runDate}`,
    `${VM}.xml.${result.runDate}`,
    `${VM}.ldif.${result.runDate}`,
    ...vm.disks.map((d) => `${path.basename(d.file)}.${result.runDate}`),
  ];
  const present = new Set(await fs.readdir(result.backupDir));
  check(
    expected.every((f) => present.has(f)),
    `the backup holds the state, XML, LDIF and ${vm.disks.length} disk images`,
  );
  for (const p of PATTERNS) {
    const file = path.join(result.backupDir, `${path.basename(vm.disks[p.disk]!.file)}.${result.runDate}`);
    check(
      await backupImageHolds(file, p.pattern, p.offset, p.length),
      `backed-up image of ${vm.disks[p.disk]!.target} holds the guest's 0x${p.pattern.toString(16)} data`,
    );
  }

  section('the VM after the backup');
  const state = await virsh.state(VM);
  check(state === 'running', `${VM} is ${state ?? 'not defined'}`);
  for (const p of PATTERNS) {
    check(
      await guest.reads(VM, p.disk, p.pattern, p.offset, p.length),
      `the guest still reads 0x${p.pattern.toString(16)} on ${vm.disks[p.disk]!.target}`,
    );
  }
  const sources = await virsh.diskSources(VM);
  for (const d of vm.disks) {
    const info = await imageInfo(d.file);
    check(
      sources.get(d.target) === d.file && !info.backingFilename,
      `live image ${path.basename(d.file)} (${info.format}) has no backing file${info.backingFilename ? `: it has ${info.backingFilename}` : ''}`,
    );
  }

  section('run leaf in the directory');
  const leaves = await withDirectory(directory, (dir) =>
    readLeaves(dir, new StoneyTree(directory.baseDn), VM),
  );
  const leaf = leaves.find((l) => l.runDate === result.runDate);
  if (check(leaf !== undefined, `ou=${result.runDate},ou=backup,sstVirtualMachine=${VM} exists`)) {
    say(`  sstProvisioningMode:          ${leaf!.mode}`);
    say(`  sstProvisioningReturnValue:   ${leaf!.returnValue}`);
    say(`  sstProvisioningState:         ${leaf!.state}`);
    say(`  sstProvisioningExecutionTime: ${leaf!.executionTimes.join(', ')}`);
    check(leaf!.mode === 'finished' && leaf!.returnValue === 0, 'the run leaf says finished, return value 0');
  }
}

async function main(): Promise<number> {
  const onSignal = (signal: NodeJS.Signals) => {
    say(`\n${signal}: stopping the workers`);
    void stopWorkers().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await demo();
  } catch (err) {
    failures.push((err as Error).message);
    say(`\nERROR: ${(err as Error).stack ?? String(err)}`);
  } finally {
    if (workers.length) {
      section('stopping the workers');
      await stopWorkers();
    }
  }
  say();
  if (failures.length) {
    say(`demo FAILED (${failures.length}):`);
    for (const f of failures) say(`  - ${f}`);
    return 1;
  }
  say(`demo passed: ${VM} was backed up and keeps running on its own, merged disks`);
  return 0;
}

process.exit(await main());
