/**
 * `npm run demo`: the whole story on the embedded services, with real workers.
 *
 * Creates the sandbox VM `demo-vm` (two qcow2 disks, 96 MiB of random data in its RAM) on
 * node `demo-node`, writes a pattern through the guest's disks, starts a control and a
 * node worker as child processes, backs the VM up as `vmbackup backup demo-vm --wait` does,
 * checks what the guest, the files and the directory show, verifies the backup, changes
 * the guest's disk and the directory entry, restores with a decision (the backup's side
 * for every conflict) and shows that the guest reads its backed-up disk data and RAM
 * again. Exits 1 when a check fails. Needs the environment of `.dev/env` (scripts/demo.sh
 * sources it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { runBackup } from '../cli/backup';
import { timingFromEnv, CONTROL_TASK_QUEUE } from '../config';
import type { VerifyReport } from '../domain/verification';
import type { RestoreVmResult } from '../workflows/restore-vm';
import type { VerifyBackupsResult } from '../workflows/verify-backups';
import { verifyWorkflowId } from '../workflows/verify-backups';
import { decideUpdate, restoreStatus, type RestoreStatus } from '../workflows/messages';
import { OutcomeKey, RunDateKey } from '../workflows/search-attributes';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob, type RamBlob } from './guest-ram';
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
/** What the guest writes over the first pattern after the backup: the restore must undo it. */
const AFTER = { disk: 0, pattern: 0x77, offset: 0, length: 4 * MiB } as const;
const RAM_BLOB = 'demo-96m';
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
  const blob = await ensureRamBlob(RAM_BLOB, 96 * MiB);
  const vm = await createSandboxVm(
    {
      name: VM,
      node: NODE,
      disks: 2,
      memoryMiB: 160,
      ramData: blob,
      retainRoot: need('VMBACKUP_RETAIN_ROOT'),
      backupRoot: need('VMBACKUP_BACKUP_ROOT'),
      ramDisk: need('VMBACKUP_RAMDISK'),
    },
    { virsh, directory, node },
  );
  for (const d of vm.disks) say(`  ${d.target}: ${d.file}`);
  check(
    (await blobRangeSha256(virsh, VM, blob)) === blob.sha256,
    `guest RAM holds ${mib(blob.bytes)} of random data (sha256 ${blob.sha256.slice(0, 16)}…)`,
  );
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
    runBackup(client, { vms: [VM], wait: true, progress: true }, (line) => say(`  | ${line}`)),
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
  await storyInTemporal(client, workflowId, result.runDate);
  await verifyAndRestore(client, { virsh, guest, directory, blob, runDate: result.runDate });
}

/** What an operator finds in the Temporal UI or with `temporal workflow list -q`. */
async function storyInTemporal(client: Client, workflowId: string, runDate: string): Promise<void> {
  section('what the Temporal UI shows');
  const desc = await client.workflow.getHandle(workflowId).describe();
  const outcome = desc.typedSearchAttributes.get(OutcomeKey);
  say(
    `  search attributes: Outcome=${outcome} RunDate=${desc.typedSearchAttributes.get(RunDateKey)?.toISOString()}`,
  );
  say(
    `  find it with: temporal workflow list -q "Outcome = 'finished' AND Node = '${NODE}' AND RunDate >= '...'"`,
  );
  check(outcome === 'finished', `the run of ${runDate} is marked Outcome=finished`);
}

interface Scene {
  virsh: Virsh;
  guest: GuestIo;
  directory: ReturnType<typeof adminDirectoryConfig>;
  blob: RamBlob;
  runDate: string;
}

async function verifyAndRestore(client: Client, s: Scene): Promise<void> {
  section(`verify (as: vmbackup verify ${VM})`);
  const verified = (await client.workflow.execute('verifyBackups', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: verifyWorkflowId(VM),
    args: [{ vm: VM, timing: timingFromEnv() }],
  })) as VerifyBackupsResult;
  const report: VerifyReport | undefined = verified.reports[0];
  say(
    `  backup ${report?.runDate}: ${report?.outcome}, ${report?.files} files, ${mib(report?.bytesRead ?? 0)} re-read against the manifest`,
  );
  check(report?.outcome === 'passed', 'the backup passed verification');

  section('changes after the backup');
  await s.guest.write(VM, AFTER.disk, AFTER.pattern, AFTER.offset, AFTER.length);
  check(
    await s.guest.reads(VM, AFTER.disk, AFTER.pattern, AFTER.offset, AFTER.length),
    `the guest overwrote ${mib(AFTER.length)} of vda with 0x${AFTER.pattern.toString(16)}`,
  );
  const tree = new StoneyTree(s.directory.baseDn);
  await withDirectory(s.directory, (dir) =>
    dir.replace(tree.vm(VM), { description: 'changed after the backup' }),
  );
  say(`  the directory entry's description now says "changed after the backup"`);
  // QEMU's loaders fill RAM at every start: blank, only the saved state can bring the blob back.
  await blankRamLoaders(VM, s.blob);

  section(`restore (as: vmbackup restore ${VM}, then vmbackup restore decide ${VM})`);
  const handle = await client.workflow.start('restoreVm', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: vmWorkflowId(VM),
    args: [{ vm: VM, timing: timingFromEnv(), decisionTimeoutSeconds: 600 }],
  });
  let status: RestoreStatus | undefined;
  for (let i = 0; i < 600 && status?.stage !== 'awaiting-decision'; i++) {
    status = await handle.query(restoreStatus);
    if (status.stage === 'failed') break;
    if (status.stage !== 'awaiting-decision') await sleep(250);
  }
  if (!check(status?.stage === 'awaiting-decision', `the restore waits for a decision (${status?.stage})`))
    return;
  say(
    `  backup ${status!.backup}, ${status!.conflicts.length} conflict(s) between the backed-up and the live configuration:`,
  );
  for (const c of status!.conflicts)
    say(`    ${c.id.padEnd(28)} backup: ${c.backup ?? '(none)'}   live: ${c.live ?? '(none)'}`);
  const decision = Object.fromEntries(status!.conflicts.map((c) => [c.id, 'backup' as const]));
  say('  decision: the backup for every conflict');
  await handle.executeUpdate(decideUpdate, { args: [decision] });
  const restored = (await handle.result()) as RestoreVmResult;
  check(restored.outcome === 'restored', `the restore ended: ${restored.outcome}`);

  section('what the guest sees after the restore');
  const state = await s.virsh.state(VM);
  check(state === 'running', `${VM} is ${state ?? 'not defined'}`);
  const first = PATTERNS[0];
  check(
    await s.guest.reads(VM, first.disk, first.pattern, first.offset, first.length),
    `the guest reads its backed-up 0x${first.pattern.toString(16)} on vda again, not the later 0x${AFTER.pattern.toString(16)}`,
  );
  check(
    (await blobRangeSha256(s.virsh, VM, s.blob)) === s.blob.sha256,
    `guest RAM holds the ${mib(s.blob.bytes)} it had at the backup (from the saved state; the loaders were blank)`,
  );
  const description = await withDirectory(
    s.directory,
    async (dir) => (await dir.read(tree.vm(VM)))?.attributes['description'],
  );
  const backedUp = status!.conflicts.find((c) => c.id === 'dir:.:description')?.backup;
  check(
    backedUp !== undefined && (description ?? []).join(', ') === backedUp,
    `the directory entry is the backed-up one again (description: ${JSON.stringify(description ?? null)})`,
  );
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
  say(`demo passed: ${VM} was backed up, verified, changed and restored to what it had at the backup`);
  return 0;
}

process.exit(await main());
