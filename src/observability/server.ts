import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ConfigError } from '../config';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `host:port` (`[::1]:9464` for IPv6; `:9464` for every address) as host and port. */
export function parseListenAddress(value: string, variable = 'VMBACKUP_METRICS_ADDRESS'): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535))
    throw new ConfigError(
      `${variable} must be host:port (e.g. 127.0.0.1:9464), not ${JSON.stringify(value)}`,
    );
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A free TCP port on the loopback interface (for the SDK's exporter, which binds it itself). */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', resolve);
  });
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export interface MetricsServer {
  /** Where it listens, as `host:port` (the real port when 0 was asked for). */
  address: string;
  close(): Promise<void>;
}

/**
 * The worker's `/metrics`: the project's registry followed by the Temporal SDK's own
 * exposition (fetched from its exporter on loopback), so that one scrape gets both. The
 * server does not keep the process alive.
 */
export async function startMetricsServer(options: {
  listen: ListenAddress;
  registry: Registry;
  /** The SDK exporter's URL (`http://127.0.0.1:port/metrics`), when the Runtime has one. */
  sdkUrl?: string | undefined;
  onError?: (err: unknown) => void;
}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    exposition(options.registry, options.sdkUrl).then(
      (body) => {
        res.writeHead(200, { 'content-type': options.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        options.onError?.(err);
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`metrics failed: ${(err as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(
          `cannot serve metrics on ${options.listen.host}:${options.listen.port} (VMBACKUP_METRICS_ADDRESS): ${err.message}`,
        ),
      ),
    );
    server.listen(options.listen.port, options.listen.host, resolve);
  });
  server.unref();
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    address: `${host}:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function exposition(registry: Registry, sdkUrl: string | undefined): Promise<string> {
  const own = await registry.metrics();
  if (!sdkUrl) return own;
  let sdk: string;
  try {
    const res = await fetch(sdkUrl, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    sdk = await res.text();
  } catch (err) {
    sdk = `# Temporal SDK metrics unavailable: ${String((err as Error).message).replace(/\n/g, ' ')}\n`;
  }
  return `${own.endsWith('\n') ? own : own + '\n'}${sdk}`;
}
