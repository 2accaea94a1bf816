import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type { TemporalConfig } from '../config';
import { dataConverterFromEnv } from '../codec/data-converter';
import { connectionSecurity } from './security';

/**
 * Every Temporal client of the project connects through here, so that TLS, API key and the
 * payload codec are the same for the workers, the CLI, the schedule sync, the demo and tests.
 */
function unreachable(config: TemporalConfig, err: unknown): Error {
  // The client SDK's "Failed to connect" keeps the server's reason (e.g. a refused certificate) in cause.
  const cause = (err as Error).cause;
  const why = cause instanceof Error ? `${(err as Error).message}: ${cause.message}` : (err as Error).message;
  return new Error(`cannot reach the Temporal server at ${config.address} (TEMPORAL_ADDRESS): ${why}`);
}

export function dataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  return dataConverterFromEnv(env);
}

/** `{ dataConverter }` to spread into client, worker and replayer options; `{}` when payloads stay plain. */
export function withDataConverter(env: NodeJS.ProcessEnv = process.env): { dataConverter?: DataConverter } {
  const converter = dataConverter(env);
  return converter ? { dataConverter: converter } : {};
}

export async function connectWorker(config: TemporalConfig): Promise<NativeConnection> {
  // Outside the try: an unreadable certificate is a configuration error, not an unreachable server.
  const security = await connectionSecurity(config);
  try {
    return await NativeConnection.connect({ address: config.address, ...security });
  } catch (err) {
    throw unreachable(config, err);
  }
}

export async function connectClient(
  config: TemporalConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Client> {
  const security = await connectionSecurity(config);
  try {
    const connection = await Connection.connect({
      address: config.address,
      connectTimeout: '10s',
      ...security,
    });
    return new Client({ connection, namespace: config.namespace, ...withDataConverter(env) });
  } catch (err) {
    throw unreachable(config, err);
  }
}
