import { WorkflowFailedError } from '@temporalio/client';
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
