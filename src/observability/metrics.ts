import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RetainResult, SnapshotResult } from '../activities/node/types';
import type { DrillReport } from '../activities/node/drill';
import type { RestoreAsResult } from '../activities/node/restore-as';
import type { BackupTarget, FleetRuns, RestoreTarget } from '../activities/directory';
import type { LeafUpdate } from '../domain/protocol';
import type { VerifyReport } from '../domain/verification';
import { isCompleteRun } from '../domain/runs';

/** Worker roles: the node worker (hypervisor activities) and the control worker (workflows, directory). */
export type WorkerRole = 'node' | 'control';

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];
const DOWNTIME_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];

/**
 * The project's metrics, in a registry of their own (one per process, shared by every worker
 * the process runs: a node worker's series carry its `node`).
 */
export class VmBackupMetrics {
  readonly registry = new Registry();

  readonly backups = new Counter({
    name: 'vmbackup_backups_total',
    help: 'Backup runs that ended, by outcome (finished: the run leaf was marked finished; failed: a step failed or was refused).',
    labelNames: ['vm', 'node', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly lastSuccess = new Gauge({
    name: 'vmbackup_last_success_timestamp_seconds',
    help: 'When the last backup of the VM finished (Unix time), also as read from the directory at start and every few minutes.',
    labelNames: ['vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly restores = new Counter({
    name: 'vmbackup_restores_total',
    help: 'Restores that ended, by kind (in-place, as) and outcome (restored, aborted, failed).',
    labelNames: ['vm', 'node', 'kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly downtime = new Histogram({
    name: 'vmbackup_downtime_seconds',
    help: 'Time a VM was not running during its snapshot, per snapshot.',
    labelNames: ['node', 'mode'] as const,
    buckets: DOWNTIME_BUCKETS,
    registers: [this.registry],
  });
  readonly lastDowntime = new Gauge({
    name: 'vmbackup_last_downtime_seconds',
    help: 'Time the VM was not running during its last snapshot (0 for a VM that was shut down).',
    labelNames: ['vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly stepSeconds = new Histogram({
    name: 'vmbackup_step_duration_seconds',
    help: 'Duration of the node steps that completed (snapshot, merge, retain, verifyBackup, restoreMachine, …).',
    labelNames: ['step', 'node'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly lastStepSeconds = new Gauge({
    name: 'vmbackup_last_step_duration_seconds',
    help: "Duration of the VM's last completed node step of each kind.",
    labelNames: ['step', 'vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly lastBytes = new Gauge({
    name: 'vmbackup_backup_bytes',
    help: "Bytes the VM's last retained backup holds.",
    labelNames: ['vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly lastFiles = new Gauge({
    name: 'vmbackup_backup_files',
    help: "Files the VM's last retained backup holds.",
    labelNames: ['vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly bytesTotal = new Counter({
    name: 'vmbackup_retained_bytes_total',
    help: 'Bytes of all backups retained by the node.',
    labelNames: ['node'] as const,
    registers: [this.registry],
  });
  readonly verifications = new Counter({
    name: 'vmbackup_verify_total',
    help: 'Backup verifications that ended, by outcome (passed, failed, no-manifest).',
    labelNames: ['vm', 'node', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly lastVerifyFailed = new Gauge({
    name: 'vmbackup_last_verify_failed',
    help: "1 when the VM's last verification found problems, else 0.",
    labelNames: ['vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly lastVerify = new Gauge({
    name: 'vmbackup_last_verify_timestamp_seconds',
    help: "When the VM's last verification ended (Unix time).",
    labelNames: ['vm', 'node'] as const,
    registers: [this.registry],
  });
  readonly drills = new Counter({
    name: 'vmbackup_drills_total',
    help: 'Restore drills that ended, by outcome (passed, failed).',
    labelNames: ['vm', 'node', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly activityFailures = new Counter({
    name: 'vmbackup_activity_failures_total',
    help: 'Failed activity attempts (each retry counts), by activity.',
    labelNames: ['role', 'node', 'activity'] as const,
    registers: [this.registry],
  });
  readonly workerUp = new Gauge({
    name: 'vmbackup_worker_up',
    help: 'A worker of this process: 1 while it is set up to poll its task queue.',
    labelNames: ['role', 'node', 'task_queue'] as const,
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: 'vmbackup_build_info',
    help: 'Always 1; the labels tell the version of vmbackup and of Node.js.',
    labelNames: ['version', 'nodejs'] as const,
    registers: [this.registry],
  });

  /** Facts already counted, so that a step reported twice for one run (a retried write) counts once. */
  private readonly counted = new Set<string>();
  /** The node of each VM, as the control worker's directory reads told it. */
  private readonly nodes = new Map<string, string>();
  private readonly successes = new Map<string, { node: string; at: number }>();

  constructor(options: { version?: string; defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'vmbackup_' });
    this.buildInfo.set({ version: options.version ?? 'unknown', nodejs: process.version }, 1);
  }

  /** True the first time `key` is seen. */
  once(key: string): boolean {
    if (this.counted.has(key)) return false;
    if (this.counted.size >= 50_000) this.counted.clear();
    this.counted.add(key);
    return true;
  }

  /** A backup of the VM that ended well at `at` (epoch ms); an earlier one changes nothing. */
  noteSuccess(vm: string, node: string, at: number): void {
    const known = this.successes.get(vm);
    if (known && known.at >= at && known.node === node) return;
    if (known && known.node !== node) this.lastSuccess.remove({ vm, node: known.node });
    const latest = Math.max(at, known?.at ?? 0);
    this.successes.set(vm, { node, at: latest });
    this.lastSuccess.set({ vm, node }, latest / 1000);
  }

  noteNode(vm: string, node: string): void {
    this.nodes.set(vm, node);
  }
  nodeOf(vm: string): string {
    return this.nodes.get(vm) ?? '';
  }
}

/** One activity that ended on a worker, as the interceptor saw it. */
export interface ActivityEvent {
  role: WorkerRole;
  /** The node worker's node (node role); the control worker has none. */
  node?: string | undefined;
  activityType: string;
  workflowType: string;
  args: readonly unknown[];
  durationMs: number;
  /** When it ended (epoch ms). */
  now: number;
  /** The result, for a completion. */
  result?: unknown;
  /** Set for a failed attempt. */
  failed?: boolean;
}

/** Directory activities whose first argument is the VM's name. */
const VM_FIRST = new Set([
  'loadBackupTarget',
  'exportVmEntry',
  'initializeRun',
  'updateRun',
  'loadRestoreTarget',
  'exportLiveEntry',
  'writeVmEntries',
  'removeRun',
  'vmEntryExists',
  'listRuns',
  'markVerification',
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The VM an activity acts on, from its input (`VmRunInput.vm`, or the name a directory activity takes first). */
export function vmOfActivity(activityType: string, args: readonly unknown[]): string | undefined {
  const first = args[0];
  if (isRecord(first) && typeof first['vm'] === 'string') return first['vm'];
  if (typeof first === 'string' && VM_FIRST.has(activityType)) return first;
  const second = args[1];
  if (activityType === 'addRestoredVm' && isRecord(second) && typeof second['as'] === 'string')
    return second['as'];
  return undefined;
}

/** The run (backup date) an activity acts on, when its input names one. */
export function runDateOfActivity(activityType: string, args: readonly unknown[]): string | undefined {
  const first = args[0];
  if (isRecord(first) && typeof first['runDate'] === 'string') return first['runDate'];
  if (VM_FIRST.has(activityType) && typeof args[1] === 'string') return args[1];
  return undefined;
}

/** Backup leaf modes a failed step is written with (go and running forms of snapshot, merge, retain). */
const BACKUP_STEP_MODES = new Set(['snapshot', 'snapshotting', 'merge', 'merging', 'retain', 'retaining']);

/**
 * What a run-leaf write tells about the run's end: the backup workflow writes `finished`
 * (return value 0) as its last step and a step's error code when it fails; the in-place
 * restore writes `finished` with a time when restored and with state 0 when aborted.
 * Every other write (progress, retention's deletes) ends nothing.
 */
export function runEnd(
  workflowType: string,
  update: LeafUpdate | undefined,
): { kind: 'backup' | 'restore'; outcome: string } | undefined {
  if (!update || typeof update.mode !== 'string') return undefined;
  const mode = update.mode.toLowerCase();
  const code = update.returnValue;
  if (workflowType === 'backupVm') {
    if (mode === 'finished' && (code ?? 0) === 0) return { kind: 'backup', outcome: 'finished' };
    if (code !== undefined && code !== 0 && BACKUP_STEP_MODES.has(mode))
      return { kind: 'backup', outcome: 'failed' };
    return undefined;
  }
  if (workflowType === 'restoreVm') {
    if (mode === 'finished' && (code ?? 0) === 0)
      return { kind: 'restore', outcome: update.state === 'now' ? 'restored' : 'aborted' };
    if (code !== undefined && code !== 0) return { kind: 'restore', outcome: 'failed' };
  }
  return undefined;
}

const seconds = (ms: number) => Math.max(0, ms) / 1000;

/**
 * Records what one activity's end tells: counts completions (a retried attempt that failed
 * counts only in `vmbackup_activity_failures_total`), each fact once per VM and run.
 * Returns the end of a run it saw (`backup finished`, `restore failed`, …), for the log.
 */
export function recordActivity(metrics: VmBackupMetrics, ev: ActivityEvent): string | undefined {
  const vm = vmOfActivity(ev.activityType, ev.args);
  if (ev.failed) {
    metrics.activityFailures.inc({ role: ev.role, node: ev.node ?? '', activity: ev.activityType });
    return undefined;
  }
  if (ev.role === 'control') return recordControl(metrics, ev, vm);
  recordNode(metrics, ev, vm);
  return undefined;
}

function recordControl(
  metrics: VmBackupMetrics,
  ev: ActivityEvent,
  vm: string | undefined,
): string | undefined {
  const result = ev.result;
  if (
    (ev.activityType === 'loadBackupTarget' || ev.activityType === 'loadRestoreTarget') &&
    isRecord(result)
  ) {
    const target = result as unknown as BackupTarget | RestoreTarget;
    if (vm && typeof target.vm?.node === 'string') metrics.noteNode(vm, target.vm.node);
    return undefined;
  }
  if (ev.activityType === 'listFleetRuns' && Array.isArray(result)) {
    seedFromFleet(metrics, result as FleetRuns[]);
    return undefined;
  }
  if (ev.activityType !== 'updateRun' || !vm) return undefined;
  const runDate = String(ev.args[1]);
  const end = runEnd(ev.workflowType, ev.args[2] as LeafUpdate | undefined);
  if (!end || !metrics.once(`${end.kind}|${vm}|${runDate}|${ev.workflowType}`)) return undefined;
  const node = metrics.nodeOf(vm);
  if (end.kind === 'backup') {
    metrics.backups.inc({ vm, node, outcome: end.outcome });
    if (end.outcome === 'finished') metrics.noteSuccess(vm, node, ev.now);
  } else {
    metrics.restores.inc({ vm, node, kind: 'in-place', outcome: end.outcome });
  }
  return `${end.kind} ${end.outcome}`;
}

function recordNode(metrics: VmBackupMetrics, ev: ActivityEvent, vm: string | undefined): void {
  if (!vm) return;
  const node = ev.node ?? '';
  const runDate = runDateOfActivity(ev.activityType, ev.args) ?? '';
  const step = ev.activityType;
  metrics.stepSeconds.observe({ step, node }, seconds(ev.durationMs));
  metrics.lastStepSeconds.set({ step, vm, node }, seconds(ev.durationMs));
  const result = ev.result;
  if (!isRecord(result)) return;
  const first = metrics.once(`${step}|${vm}|${runDate}`);
  switch (step) {
    case 'snapshot': {
      const snap = result as unknown as SnapshotResult;
      if (typeof snap.downtimeMs !== 'number') return;
      metrics.lastDowntime.set({ vm, node }, seconds(snap.downtimeMs));
      if (first) metrics.downtime.observe({ node, mode: snap.mode ?? 'save' }, seconds(snap.downtimeMs));
      return;
    }
    case 'retain': {
      const kept = result as unknown as RetainResult;
      if (typeof kept.bytes !== 'number') return;
      metrics.lastBytes.set({ vm, node }, kept.bytes);
      if (Array.isArray(kept.files)) metrics.lastFiles.set({ vm, node }, kept.files.length);
      if (first) metrics.bytesTotal.inc({ node }, kept.bytes);
      return;
    }
    case 'verifyBackup': {
      const report = result as unknown as VerifyReport;
      if (typeof report.outcome !== 'string') return;
      if (!metrics.once(`verify|${vm}|${runDate}|${report.checkedAt}`)) return;
      metrics.verifications.inc({ vm, node, outcome: report.outcome });
      metrics.lastVerifyFailed.set({ vm, node }, report.outcome === 'failed' ? 1 : 0);
      const at = Date.parse(report.checkedAt);
      metrics.lastVerify.set({ vm, node }, (Number.isFinite(at) ? at : ev.now) / 1000);
      return;
    }
    case 'drill': {
      const report = result as unknown as DrillReport;
      if (typeof report.outcome !== 'string' || !metrics.once(`drill|${vm}|${report.drillId}`)) return;
      metrics.drills.inc({ vm, node, outcome: report.outcome });
      return;
    }
    case 'restoreAs': {
      const restored = result as unknown as RestoreAsResult;
      if (!first) return;
      metrics.restores.inc({ vm: restored.as ?? vm, node, kind: 'as', outcome: 'restored' });
      return;
    }
  }
}

/** `YYYYMMDDThhmmssZ` (a run date) as epoch ms. */
function leafTime(state: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(state);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

/**
 * The last success of each VM as the directory has it (the run date of its latest complete
 * backup: a restore rewrites a leaf's state time, never its date): what the gauge shows
 * after a restart, before any backup ran in this process. Never moves a gauge back.
 */
export function seedFromFleet(metrics: VmBackupMetrics, fleet: readonly FleetRuns[]): void {
  for (const { vm, node, runs } of fleet) {
    metrics.noteNode(vm, node);
    let last: number | undefined;
    for (const r of runs) {
      if (r.mode.toLowerCase() !== 'finished' || !isCompleteRun(r)) continue;
      const t = leafTime(r.runDate);
      if (t !== undefined && (last === undefined || t > last)) last = t;
    }
    if (last !== undefined) metrics.noteSuccess(vm, node, last);
  }
}
