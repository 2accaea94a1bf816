import { ConfigError } from '../config';
import { dataConverterFromEnv } from '../codec/data-converter';
import { originOf, startCodecServer } from '../codec/server';

/** What `vmbackup codec-server --help` says besides its options. */
export const CODEC_SERVER_DESCRIPTION = `Serves Temporal's remote codec protocol (POST /encode, /decode) with the keys of
VMBACKUP_CODEC_KEYS_FILE, so that the Temporal UI and \`temporal ... --codec-endpoint URL\`
show the encrypted payloads in clear. Whoever reaches it can decrypt: keep it on loopback.
Stops on SIGINT/SIGTERM.`;

export interface CodecServerOptions {
  port?: string | undefined;
  address?: string | undefined;
  origin?: string | undefined;
}

export async function runCodecServer(
  values: CodecServerOptions,
  out: (line: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const port = Number(values.port ?? '8081');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('--port must be 0-65535');
  const converter = dataConverterFromEnv(env);
  const codec = converter?.payloadCodecs?.[0];
  if (!codec) throw new ConfigError('vmbackup codec-server needs VMBACKUP_CODEC_KEYS_FILE');
  const originUrl = values.origin ?? env['TEMPORAL_UI_URL'];
  let origin: string | undefined;
  try {
    origin = originUrl ? originOf(originUrl) : undefined;
  } catch (err) {
    throw new ConfigError(`--origin: ${(err as Error).message}`);
  }
  const server = await startCodecServer({ codec, port, address: values.address ?? '127.0.0.1', origin });
  out(`codec server listening on ${server.url} (CORS for ${origin ?? 'no origin'})`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
