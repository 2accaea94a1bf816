import { readFile } from 'node:fs/promises';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError, type TemporalConfig } from '../config';

/** The options both `Connection.connect` and `NativeConnection.connect` take for TLS and API keys. */
export interface ConnectionSecurity {
  tls?: TLSConfig;
  apiKey?: string;
}

async function pem(variable: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    // Said here, not later as a TLS handshake failure that names neither the setting nor the file.
    throw new ConfigError(
      `cannot read ${file} (${variable}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** TLS and API key options for a Temporal connection (plain when the config names none). */
export async function connectionSecurity(config: TemporalConfig): Promise<ConnectionSecurity> {
  const { tls: files, apiKey } = config;
  const security: ConnectionSecurity = apiKey !== undefined ? { apiKey } : {};
  if (!files) return security;
  const tls: TLSConfig = {};
  if (files.serverName !== undefined) tls.serverNameOverride = files.serverName;
  if (files.serverCaCertPath !== undefined)
    tls.serverRootCACertificate = await pem('TEMPORAL_TLS_SERVER_CA_CERT_PATH', files.serverCaCertPath);
  if (files.clientCertPath !== undefined && files.clientKeyPath !== undefined) {
    tls.clientCertPair = {
      crt: await pem('TEMPORAL_TLS_CLIENT_CERT_PATH', files.clientCertPath),
      key: await pem('TEMPORAL_TLS_CLIENT_KEY_PATH', files.clientKeyPath),
    };
  }
  return { ...security, tls };
}
