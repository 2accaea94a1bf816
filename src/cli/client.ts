import { Client, Connection } from '@temporalio/client';
import type { TemporalConfig } from '../config';

export async function connectClient(config: TemporalConfig): Promise<Client> {
  try {
    const connection = await Connection.connect({ address: config.address, connectTimeout: '10s' });
    return new Client({ connection, namespace: config.namespace });
  } catch (err) {
    throw new Error(
      `cannot reach the Temporal server at ${config.address} (TEMPORAL_ADDRESS): ${(err as Error).message}`,
    );
  }
}

/** Where an operator sees the run in the Temporal UI. */
export function uiLink(config: TemporalConfig, workflowId: string, runId?: string): string | undefined {
  if (!config.uiUrl) return undefined;
  const base = `${config.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}
