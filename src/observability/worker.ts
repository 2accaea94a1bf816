import { readFileSync } from 'node:fs';
import { Runtime, makeTelemetryFilterString, type ActivityInterceptorsFactory } from '@temporalio/worker';
import type { LogLevel } from '@temporalio/common';
import { directoryConfig } from '../config';
import { createDirectoryActivities } from '../activities/directory';
import { createLogger, logLevelFromEnv, TemporalPinoLogger, type Pino } from './logger';
import { observabilityInterceptor } from './interceptors';
import { seedFromFleet, VmBackupMetrics, type WorkerRole } from './metrics';
import { freeLoopbackPort, parseListenAddress, startMetricsServer, type MetricsServer } from './server';

export interface WorkerIdentity {
  role: WorkerRole;
  /** The node a node worker serves. */
  node?: string | undefined;
  taskQueue: string;
}

/** What a worker needs of the process's logging and metrics. */
export interface WorkerObservability {
  /** The process's logger, bound to this worker's role and node. */
  logger: Pino;
  /** The process's metrics; undefined when `VMBACKUP_METRICS_ADDRESS` is unset. */
  metrics: VmBackupMetrics | undefined;
  /** Where `/metrics` is served (`host:port`), when it is. */
  metricsAddress: string | undefined;
  /** For `Worker.create({ interceptors: { activity } })`. */
  activityInterceptors: ActivityInterceptorsFactory[];
  /** Marks the worker as no longer up (`vmbackup_worker_up` 0). */
  stopped(): void;
}

interface ProcessObservability {
  logger: Pino;
  metrics: VmBackupMetrics | undefined;
  server: MetricsServer | undefined;
  /** Whether the Temporal Runtime was installed here (else an earlier one stands, with its logger). */
  runtimeInstalled: boolean;
  refresh: NodeJS.Timeout | undefined;
}

let processObservability: Promise<ProcessObservability> | undefined;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const CORE_LEVELS: Record<string, LogLevel> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'WARN',
  warn: 'WARN',
  error: 'ERROR',
  fatal: 'ERROR',
  silent: 'ERROR',
};

/**
 * Once per process, before any Temporal connection: the JSON logger (`VMBACKUP_LOG_LEVEL`),
 * installed as the Temporal Runtime's logger with the SDK core's own warnings forwarded to
 * it, and with `VMBACKUP_METRICS_ADDRESS` set the project's registry and the `/metrics`
 * server, the SDK's exporter bound on a loopback port of its own that the server appends.
 */
async function setUpProcess(env: NodeJS.ProcessEnv, first: WorkerIdentity): Promise<ProcessObservability> {
  const logger = createLogger({ role: first.role, node: first.node }, env);
  const address = env['VMBACKUP_METRICS_ADDRESS']?.trim() || undefined;
  const listen = address ? parseListenAddress(address) : undefined;
  const sdkPort = listen ? await freeLoopbackPort() : undefined;
  let runtimeInstalled = false;
  try {
    Runtime.install({
      logger: new TemporalPinoLogger(logger),
      telemetryOptions: {
        logging: {
          forward: {},
          filter: makeTelemetryFilterString({ core: CORE_LEVELS[logLevelFromEnv(env)] ?? 'WARN' }),
        },
        ...(sdkPort !== undefined && { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkPort}` } } }),
      },
    });
    runtimeInstalled = true;
  } catch (err) {
    // A Runtime made earlier in this process (a test's) keeps its logger and has no exporter of ours.
    logger.warn({ err }, 'the Temporal Runtime was set up before: its logger stays, no SDK metrics');
  }
  let metrics: VmBackupMetrics | undefined;
  let server: MetricsServer | undefined;
  if (listen) {
    metrics = new VmBackupMetrics({ version: packageVersion() });
    server = await startMetricsServer({
      listen,
      registry: metrics.registry,
      sdkUrl: runtimeInstalled ? `http://127.0.0.1:${sdkPort}/metrics` : undefined,
      onError: (err) => logger.error({ err }, 'serving metrics failed'),
    });
    logger.info({ metricsAddress: server.address }, `metrics served on http://${server.address}/metrics`);
  }
  return { logger, metrics, server, runtimeInstalled, refresh: undefined };
}

/** How often the control worker reads every VM's last complete backup from the directory. */
const SEED_MINUTES = 15;

/**
 * A worker's logging and metrics, set up for the process by the first worker that asks
 * (call it before the worker's connection). Every later worker of the process shares them:
 * one logger, one registry, one `/metrics`, its own series by `node`.
 */
export async function startWorkerObservability(
  env: NodeJS.ProcessEnv,
  worker: WorkerIdentity,
): Promise<WorkerObservability> {
  processObservability ??= setUpProcess(env, worker);
  let proc: ProcessObservability;
  try {
    proc = await processObservability;
  } catch (err) {
    processObservability = undefined; // a bad setting: the next attempt reads it again
    throw err;
  }
  const logger = proc.logger.child({
    role: worker.role,
    ...(worker.node !== undefined && { node: worker.node }),
  });
  const labels = { role: worker.role, node: worker.node ?? '', task_queue: worker.taskQueue };
  proc.metrics?.workerUp.set(labels, 1);
  if (proc.metrics && worker.role === 'control' && !proc.refresh) seedLastSuccess(proc, env);
  return {
    logger,
    metrics: proc.metrics,
    metricsAddress: proc.server?.address,
    activityInterceptors: [
      observabilityInterceptor({ role: worker.role, node: worker.node, metrics: proc.metrics, logger }),
    ],
    stopped: () => proc.metrics?.workerUp.set(labels, 0),
  };
}

/**
 * The last success per VM from the directory, now and every few minutes, so that the
 * gauge (and the alert on it) holds across restarts of the control worker.
 */
function seedLastSuccess(proc: ProcessObservability, env: NodeJS.ProcessEnv): void {
  const metrics = proc.metrics!;
  let activities: ReturnType<typeof createDirectoryActivities>;
  try {
    activities = createDirectoryActivities(directoryConfig(env));
  } catch (err) {
    proc.logger.warn({ err }, 'last backups not read from the directory');
    return;
  }
  const read = () =>
    activities.listFleetRuns().then(
      (fleet) => seedFromFleet(metrics, fleet),
      (err: unknown) => proc.logger.warn({ err }, 'reading the last backups from the directory failed'),
    );
  void read();
  proc.refresh = setInterval(() => void read(), SEED_MINUTES * 60_000);
  proc.refresh.unref();
}
