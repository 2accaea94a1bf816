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

/**
 * What a command that runs one workflow to its end says when it did not: another run of it
 * is going (exit 1), or it failed with the contract's code (exit 2). Anything else is thrown.
 */
export function explainUnfinished(
  err: unknown,
  run: { vm: string; what: string; workflowId: string },
  out: (line: string) => void,
): number {
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    out(`${run.vm}: a ${run.what} is running already (workflow ${run.workflowId})`);
    return 1;
  }
  if (!(err instanceof WorkflowFailedError)) throw err;
  const f = failureMessage(err);
  out(`${run.vm}: ${run.what} failed (error ${f.code}): ${f.message}`);
  return 2;
}
