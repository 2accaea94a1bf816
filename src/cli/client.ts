import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { TemporalConfig } from '../config';

/** Where an operator sees the run in the Temporal UI. */
export function uiLink(config: TemporalConfig, workflowId: string, runId?: string): string | undefined {
  if (!config.uiUrl) return undefined;
  const base = `${config.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}

/** The error code and message of a failed workflow, from the innermost failure that carries them. */
export function failureMessage(err: unknown): { code: number; message: string } {
  let cause: unknown = err instanceof WorkflowFailedError ? err.cause : err;
  const message = (cause as Error)?.message ?? String(err);
  let code = 1;
  while (cause && typeof cause === 'object') {
    const details = (cause as { details?: unknown[] }).details;
    const c = (details?.[0] as { code?: number } | undefined)?.code;
    if (typeof c === 'number') code = c;
    cause = (cause as { cause?: unknown }).cause;
  }
  return { code, message };
}

/** Why a workflow a command ran did not finish, for text and JSON output alike. */
export interface Unfinished {
  /** `already-running`: another run of it is going (exit 1); `failed`: it failed (exit 2). */
  kind: 'already-running' | 'failed';
  /** The contract's error code, when it failed. */
  errorCode: number | null;
  message: string;
  exitCode: number;
  /** The line the text output prints. */
  line: string;
}

/**
 * What a command that runs one workflow to its end says when it did not: another run of it
 * is going (exit 1), or it failed with the contract's code (exit 2). Anything else is thrown.
 */
export function unfinished(err: unknown, run: { vm: string; what: string; workflowId: string }): Unfinished {
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    const message = `a ${run.what} is running already (workflow ${run.workflowId})`;
    return { kind: 'already-running', errorCode: null, message, exitCode: 1, line: `${run.vm}: ${message}` };
  }
  if (!(err instanceof WorkflowFailedError)) throw err;
  const f = failureMessage(err);
  return {
    kind: 'failed',
    errorCode: f.code,
    message: f.message,
    exitCode: 2,
    line: `${run.vm}: ${run.what} failed (error ${f.code}): ${f.message}`,
  };
}

/** `unfinished` in the JSON output (docs/json.md). */
export function errorJson(u: Unfinished) {
  return { kind: u.kind, errorCode: u.errorCode, message: u.message };
}

/** `unfinished`, printed: returns the exit code. */
export function explainUnfinished(
  err: unknown,
  run: { vm: string; what: string; workflowId: string },
  out: (line: string) => void,
): number {
  const u = unfinished(err, run);
  out(u.line);
  return u.exitCode;
}
