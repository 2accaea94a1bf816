import type { TemporalConfig } from '../config';

/** Where an operator sees the run in the Temporal UI. */
export function uiLink(config: TemporalConfig, workflowId: string, runId?: string): string | undefined {
  if (!config.uiUrl) return undefined;
  const base = `${config.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}
