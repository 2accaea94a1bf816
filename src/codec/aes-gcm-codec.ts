import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { KeyRing } from './keys';

const ProtoPayload = proto.temporal.api.common.v1.Payload;

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class PayloadCodecError extends Error {
  override name = 'PayloadCodecError';
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

/**
 * Encrypts each payload whole (metadata and data, serialized as the Temporal protobuf) with
 * AES-256-GCM, so that the server stores neither the values nor their encodings. Data is
 * nonce ‖ ciphertext ‖ tag; the key id is also authenticated data, so a payload cannot be
 * relabelled to another key.
 */
export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly keys: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys.primary;
    return payloads.map((payload) => {
      const plain = ProtoPayload.encode(payload).finish();
      // A random 96-bit nonce per payload: GCM must never reuse a nonce under one key.
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(text(id));
      const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: text(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: text(id) }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Histories recorded before encryption was configured hold plain payloads.
      if (str(payload.metadata?.['encoding']) !== ENCRYPTED_ENCODING) return payload;
      const id = str(payload.metadata?.[KEY_ID_METADATA]);
      if (id === undefined)
        throw new PayloadCodecError(`encrypted payload without ${KEY_ID_METADATA} metadata`);
      const entry = this.keys.byId.get(id);
      if (!entry) {
        throw new PayloadCodecError(
          `payload encrypted with unknown key id "${id}" (known: ${[...this.keys.byId.keys()].join(', ')}); add that key to VMBACKUP_CODEC_KEYS_FILE`,
        );
      }
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < NONCE_BYTES + TAG_BYTES)
        throw new PayloadCodecError(`encrypted payload of ${data.length} bytes is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', entry.key, data.subarray(0, NONCE_BYTES));
      decipher.setAAD(text(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([
          decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)),
          decipher.final(),
        ]);
      } catch {
        throw new PayloadCodecError(
          `encrypted payload (key "${id}") fails authentication: it was altered or the key is wrong`,
        );
      }
      const decoded = ProtoPayload.decode(plain);
      return ProtoPayload.toObject(decoded, { defaults: false }) as Payload;
    });
  }
}
