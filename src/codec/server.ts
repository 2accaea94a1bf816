import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

const ProtoPayload = proto.temporal.api.common.v1.Payload;

// Payloads here are LDIF, domain XML and small results; far more is not a codec request.
const MAX_BODY_BYTES = 16 * 1024 * 1024;
// `/encode`, `/decode`, and the same under a namespace (`--codec-endpoint 'http://h/{namespace}'`).
const ROUTE = /^\/(?:[^/]+\/)?(encode|decode)$/;

export interface CodecServerOptions {
  codec: PayloadCodec;
  port: number;
  address: string;
  /** The Temporal UI's origin, the only one a browser may call from; none: no CORS at all. */
  origin: string | undefined;
}

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The origin part of a URL (`http://host:port`), as a browser sends it in `Origin`. */
export function originOf(url: string): string {
  const parsed = new URL(url);
  if (parsed.origin === 'null') throw new Error(`${url} has no origin (use http:// or https://)`);
  return parsed.origin;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The protocol's body is proto3 JSON of Payloads: `data` and every metadata value are base64. */
function payloadsOf(body: string): Payload[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
  const payloads = (parsed as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(payloads)) throw new HttpError(400, 'body must be {"payloads": [...]}');
  return payloads.map((p: unknown) => {
    try {
      return ProtoPayload.fromObject(p as Record<string, unknown>);
    } catch (err) {
      throw new HttpError(400, `not a Payload: ${(err as Error).message}`);
    }
  });
}

function toJson(payloads: Payload[]): string {
  return JSON.stringify({
    payloads: payloads.map((p) => ProtoPayload.toObject(ProtoPayload.fromObject(p), { bytes: String })),
  });
}

/**
 * Temporal's remote codec protocol (POST /encode and /decode), for the Temporal UI and
 * `temporal … --codec-endpoint`. Whoever reaches it can decrypt, hence loopback by default
 * and CORS only for the UI's origin: another site open in the operator's browser gets no
 * CORS headers, so the browser keeps the answers from it.
 */
export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  const { codec, origin } = options;

  function cors(req: IncomingMessage, res: ServerResponse): boolean {
    res.setHeader('Vary', 'Origin');
    if (origin === undefined || req.headers.origin !== origin) return false;
    res.setHeader('Access-Control-Allow-Origin', origin);
    // The UI can send credentials and the user's access token ("include cross-origin credentials").
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = ROUTE.exec(new URL(req.url ?? '/', 'http://codec').pathname)?.[1];
    if (!route) throw new HttpError(404, 'only /encode and /decode');
    const allowed = cors(req, res);
    if (req.method === 'OPTIONS') {
      if (!allowed) throw new HttpError(403, 'origin not allowed');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      throw new HttpError(405, 'use POST');
    }
    const payloads = payloadsOf(await readBody(req));
    let result: Payload[];
    try {
      result = route === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    } catch (err) {
      // An unknown key or a tampered payload: the request, not the server, is at fault.
      throw new HttpError(422, (err as Error).message);
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(toJson(result));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: (err as Error).message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
