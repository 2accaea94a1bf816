import { fileURLToPath } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec } from './aes-gcm-codec';
import { loadKeyFile } from './keys';

/** Every side must use the same one: a failure encoded by one is decoded by another. */
export const failureConverterPath = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/**
 * The payload codec of every client and worker: AES-256-GCM with the keys of
 * VMBACKUP_CODEC_KEYS_FILE, failure messages included; unset, payloads stay plain. A bad
 * key file throws, so that a worker or client never starts writing plain payloads by mistake.
 */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv): DataConverter | undefined {
  const file = env['VMBACKUP_CODEC_KEYS_FILE'];
  if (!file) return undefined;
  return { payloadCodecs: [new AesGcmCodec(loadKeyFile(file))], failureConverterPath };
}
