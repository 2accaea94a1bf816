import { NativeConnection } from '@temporalio/worker';
import type { TemporalConfig } from '../config';

export async function connectWorker(config: TemporalConfig): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: config.address });
  } catch (err) {
    throw new Error(
      `cannot reach the Temporal server at ${config.address} (TEMPORAL_ADDRESS): ${(err as Error).message}`,
    );
  }
}
