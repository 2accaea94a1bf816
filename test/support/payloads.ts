import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { dataConverter } from '../../src/temporal/connect';

/**
 * A payload as the server hands it out (e.g. heartbeat details in `describe().raw`), decoded
 * the way the workers encoded it: through the payload codec, then the JSON converter.
 */
export async function decodePayload<T>(payload: Payload): Promise<T> {
  let payloads = [payload];
  for (const codec of [...(dataConverter()?.payloadCodecs ?? [])].reverse())
    payloads = await codec.decode(payloads);
  return defaultPayloadConverter.fromPayload<T>(payloads[0]!);
}
