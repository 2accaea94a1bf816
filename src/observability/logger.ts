import { pino, type DestinationStream, type Level, type Logger as Pino } from 'pino';
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { ConfigError } from '../config';
import { vmOfWorkflowId } from '../workflows/ids';

export type { Pino };

const LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** `VMBACKUP_LOG_LEVEL` (trace, debug, info, warn, error, fatal, silent); info when unset. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): Level | 'silent' {
  const raw = (env['VMBACKUP_LOG_LEVEL'] ?? '').trim().toLowerCase();
  if (raw === '') return 'info';
  if (!LEVELS.includes(raw))
    throw new ConfigError(
      `VMBACKUP_LOG_LEVEL must be one of ${LEVELS.join(', ')}, not ${JSON.stringify(raw)}`,
    );
  return raw as Level | 'silent';
}

/** What every line of a worker process carries besides the message. */
export interface LogBase {
  role: 'node' | 'control';
  /** The node a node worker serves (a process serving several leaves it to each line's context). */
  node?: string | undefined;
}

/**
 * The workers' logger: one JSON object per line on stderr (written synchronously, so that
 * nothing is lost when the process ends), `time` in ISO 8601 and `level` as a word.
 */
export function createLogger(
  base: LogBase,
  env: NodeJS.ProcessEnv = process.env,
  destination: DestinationStream = pino.destination({ fd: 2, sync: true }),
): Pino {
  return pino(
    {
      level: logLevelFromEnv(env),
      base: { pid: process.pid, role: base.role, ...(base.node !== undefined && { node: base.node }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      messageKey: 'msg',
    },
    destination,
  );
}

/** Fields of the SDK's log metadata under the names the project's lines use. */
const RENAMED: Record<string, string> = {
  workflowRunId: 'runId',
  activityType: 'activity',
  error: 'err',
  failure: 'err',
};
/** Metadata the SDK attaches that says nothing to an operator (or is binary). */
const DROPPED = new Set(['taskToken']);

/**
 * The SDK's log metadata as flat line fields: `workflowId`, `runId`, `workflowType`,
 * `activity`, `attempt`, `taskQueue`, … and `vm` where the workflow ID names it (`vm/<name>`).
 * Errors go under `err`, which pino serializes with message and stack.
 */
export function logFields(meta: LogMetadata | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!meta) return out;
  for (const key of Object.keys(meta)) {
    if (DROPPED.has(key)) continue;
    const value: unknown = meta[key];
    if (value === undefined) continue;
    out[RENAMED[key] ?? key] = value;
  }
  const workflowId = out['workflowId'];
  if (out['vm'] === undefined && typeof workflowId === 'string') {
    const vm = vmOfWorkflowId(workflowId);
    if (vm !== undefined) out['vm'] = vm;
  }
  return out;
}

const PINO_LEVEL: Record<LogLevel, Level> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * pino behind the Temporal SDK's `Logger`: installed as the Runtime logger, it writes the
 * SDK's own lines, the workflows' `log` and the activities' `Context.log` with the
 * workflow/activity context the SDK passes as metadata.
 */
export class TemporalPinoLogger implements Logger {
  constructor(readonly pino: Pino) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const method = PINO_LEVEL[level] ?? 'info';
    this.pino[method](logFields(meta), message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
