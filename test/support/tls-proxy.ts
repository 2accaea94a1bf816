import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from './dev-env';

/**
 * The embedded Temporal dev server has no TLS of its own: tests put Debian's nginx in front
 * of it as a TLS endpoint that requires a client certificate from `ca.pem` of `certDir`.
 */
export interface TlsProxy {
  /** host:port of the TLS endpoint (loopback). */
  address: string;
  stop(): Promise<void>;
}

/** Runs scripts/make-certs.sh: ca.pem, server.pem/key and client-<name>.pem/key in `dir`. */
export async function makeCerts(dir: string, clients: string[]): Promise<void> {
  await execa('bash', [
    `${repoRoot}scripts/make-certs.sh`,
    dir,
    '--server-name',
    'localhost,127.0.0.1',
    ...clients.flatMap((c) => ['--client', c]),
  ]);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** A gRPC status in place of nginx's HTML 400 page, so that clients say why they were refused. */
function refusal(name: string, message: string): string {
  return `    location ${name} {
      default_type application/grpc;
      add_header grpc-status 16 always;
      add_header grpc-message "${message}" always;
      return 204;
    }`;
}

function nginxConfig(dir: string, port: number, certDir: string, upstream: string): string {
  const cert = (f: string) => path.join(certDir, f);
  const tmp = (f: string) => path.join(dir, f);
  return `daemon off;
worker_processes 1;
pid ${tmp('nginx.pid')};
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${tmp('body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};
  upstream temporal {
    server ${upstream};
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${cert('server.pem')};
    ssl_certificate_key ${cert('server.key')};
    ssl_client_certificate ${cert('ca.pem')};
    ssl_verify_client on;
    # Temporal's long polls last up to 70 s; large histories exceed nginx's 1 MiB default.
    grpc_read_timeout 5m;
    grpc_send_timeout 5m;
    client_max_body_size 0;
    keepalive_requests 100000;
    error_page 495 = @bad_certificate;
    error_page 496 = @no_certificate;
    location / {
      grpc_pass grpc://temporal;
    }
${refusal('@no_certificate', 'client certificate required')}
${refusal('@bad_certificate', 'client certificate not issued by the trusted CA')}
  }
}
`;
}

export async function startTlsProxy(certDir: string, upstream: string): Promise<TlsProxy> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbackup-tls-proxy-'));
  const port = await freePort();
  // nginx's workers drop root for nobody; let them reach their temp paths.
  await fs.chmod(dir, 0o755);
  const conf = path.join(dir, 'nginx.conf');
  await fs.writeFile(conf, nginxConfig(dir, port, certDir, upstream));
  // -e: the error log named before the config is read (Debian's default is under /var/log).
  // /usr/sbin is not on every PATH; scripts/setup.sh installs Debian's nginx there.
  const nginx = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  const child: ChildProcess = spawn(nginx, ['-p', dir, '-c', conf, '-e', 'stderr'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  let failed = false;
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      failed = true;
      output += `${err.message} (is nginx installed? bash scripts/setup.sh)`;
      resolve();
    });
  });
  const stop = async () => {
    if (!failed && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await fs.rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (failed || child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`nginx TLS proxy did not start on 127.0.0.1:${port}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { address: `127.0.0.1:${port}`, stop };
}
