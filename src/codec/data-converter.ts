import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from './aes-gcm-codec';
import { loadKeyFile } from './keys';

/**
 * The payload codec of every client and worker: AES-256-GCM with the keys of
 * VMBACKUP_CODEC_KEYS_FILE; unset, payloads stay plain. A bad key file throws, so that a
 * worker or client never starts writing plain payloads by mistake.
 */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv): DataConverter | undefined {
  const file = env['VMBACKUP_CODEC_KEYS_FILE'];
  if (!file) return undefined;
  return { payloadCodecs: [new AesGcmCodec(loadKeyFile(file))] };
}
