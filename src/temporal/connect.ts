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
  return new Error(
    `cannot reach the Temporal server at ${config.address} (TEMPORAL_ADDRESS): ${(err as Error).message}`,
  );
}

export function dataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  return dataConverterFromEnv(env);
}

export async function connectWorker(config: TemporalConfig): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: config.address, ...(await connectionSecurity(config)) });
  } catch (err) {
    throw unreachable(config, err);
  }
}

export async function connectClient(
  config: TemporalConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Client> {
  try {
    const connection = await Connection.connect({
      address: config.address,
      connectTimeout: '10s',
      ...(await connectionSecurity(config)),
    });
    const converter = dataConverter(env);
    return new Client({
      connection,
      namespace: config.namespace,
      ...(converter ? { dataConverter: converter } : {}),
    });
  } catch (err) {
    throw unreachable(config, err);
  }
}
