import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors, ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Pino } from './logger';
import {
  recordActivity,
  runEnd,
  runDateOfActivity,
  vmOfActivity,
  type ActivityEvent,
  type VmBackupMetrics,
  type WorkerRole,
} from './metrics';

export interface InterceptorOptions {
  role: WorkerRole;
  node?: string | undefined;
  metrics?: VmBackupMetrics | undefined;
  logger: Pino;
}

/** Node steps whose end is worth an info line of its own (the SDK logs every activity at debug). */
const NODE_STEPS = new Set([
  'snapshot',
  'rollbackSnapshot',
  'merge',
  'retain',
  'verifyBackup',
  'drill',
  'restoreAs',
  'unretainSmallFiles',
  'unretainLargeFiles',
  'restoreMachine',
  'deleteBackup',
  'exportDisk',
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** The few facts of a step's result a log line shows (never a whole LDIF or XML). */
export function resultSummary(result: unknown): Record<string, unknown> {
  if (!isRecord(result)) return {};
  const out: Record<string, unknown> = {};
  for (const key of [
    'downtimeMs',
    'snapshotMs',
    'mergeMs',
    'mode',
    'fallback',
    'bytes',
    'outcome',
    'state',
  ]) {
    const v = result[key];
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[key] = v;
  }
  if (Array.isArray(result['files'])) out['files'] = result['files'].length;
  else if (typeof result['files'] === 'number') out['files'] = result['files'];
  return out;
}

/**
 * The workers' activity interceptor: every log line of an activity (the SDK's and the
 * activity's `Context.log`) carries the VM, node and run; each activity's end updates the
 * project's metrics (`recordActivity`) and a node step's end is logged at info.
 */
export function observabilityInterceptor(options: InterceptorOptions): ActivityInterceptorsFactory {
  return (ctx: Context): ActivityInterceptors => {
    const fields: Record<string, unknown> = {};
    if (options.node !== undefined) fields['node'] = options.node;
    const info = ctx.info;
    return {
      inbound: {
        async execute(input, next) {
          const vm = vmOfActivity(info.activityType, input.args);
          if (vm !== undefined) fields['vm'] = vm;
          const runDate = runDateOfActivity(info.activityType, input.args);
          if (runDate !== undefined) fields['runDate'] = runDate;
          const started = performance.now();
          const event = (extra: Partial<ActivityEvent>): ActivityEvent => ({
            role: options.role,
            node: options.node,
            activityType: info.activityType,
            workflowType: info.workflowType ?? '',
            args: input.args,
            durationMs: performance.now() - started,
            now: Date.now(),
            ...extra,
          });
          let result: unknown;
          try {
            result = await next(input);
          } catch (err) {
            if (options.metrics)
              safely(options.logger, () => recordActivity(options.metrics!, event({ failed: true })));
            throw err;
          }
          const ev = event({ result });
          let ended: string | undefined;
          if (options.metrics) safely(options.logger, () => (ended = recordActivity(options.metrics!, ev)));
          else if (options.role === 'control') ended = describeRunEnd(ev);
          if (ended) ctx.log.info(ended, { leafMode: (input.args[2] as { mode?: unknown })?.mode });
          if (options.role === 'node' && NODE_STEPS.has(info.activityType)) {
            ctx.log.info(`${info.activityType} done`, {
              durationMs: Math.round(ev.durationMs),
              ...resultSummary(result),
            });
          }
          return result;
        },
      },
      outbound: {
        getLogAttributes(input, next) {
          return next({ ...input, ...fields });
        },
      },
    };
  };
}

/** The end of a run a control activity wrote, without metrics. */
function describeRunEnd(ev: ActivityEvent): string | undefined {
  if (ev.activityType !== 'updateRun') return undefined;
  const end = runEnd(ev.workflowType, ev.args[2] as Parameters<typeof runEnd>[1]);
  return end && `${end.kind} ${end.outcome}`;
}

/** Metrics never fail an activity: a bug there is logged, the activity's result stands. */
function safely(logger: Pino, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.error({ err }, 'recording metrics failed');
  }
}
