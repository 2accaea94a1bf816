import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, temporalConfig } from '../../src/config';
import { connectionSecurity } from '../../src/temporal/security';

const base = { TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_NAMESPACE: 'default' };
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbackup-security-'));
  for (const f of ['ca.pem', 'client.pem', 'client.key'])
    await fs.writeFile(path.join(dir, f), `pem of ${f}`);
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('connectionSecurity', () => {
  it('gives no TLS and no API key to a plain connection', async () => {
    expect(await connectionSecurity(temporalConfig(base))).toEqual({});
  });

  it('passes the client pair, the server CA and the server name from their files', async () => {
    const security = await connectionSecurity(
      temporalConfig({
        ...base,
        TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'ca.pem'),
        TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
      }),
    );
    expect(security.apiKey).toBeUndefined();
    expect(security.tls?.serverNameOverride).toBe('frontend.internal');
    expect(Buffer.from(security.tls!.serverRootCACertificate!).toString()).toBe('pem of ca.pem');
    expect(Buffer.from(security.tls!.clientCertPair!.crt).toString()).toBe('pem of client.pem');
    expect(Buffer.from(security.tls!.clientCertPair!.key).toString()).toBe('pem of client.key');
  });

  it('turns on TLS with the system roots for an API key alone', async () => {
    expect(await connectionSecurity(temporalConfig({ ...base, TEMPORAL_API_KEY: 'k3y' }))).toEqual({
      apiKey: 'k3y',
      tls: {},
    });
  });

  it.each([
    ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'ca.pem'],
    ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'client.key'],
  ])('names %s and the path of a file it cannot read', async (variable, file) => {
    const missing = path.join(dir, 'missing', file);
    const env = {
      ...base,
      TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'ca.pem'),
      [variable]: missing,
    };
    const err = await connectionSecurity(temporalConfig(env)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(variable);
    expect((err as Error).message).toContain(missing);
    expect((err as Error).message).toContain('ENOENT');
  });
});
