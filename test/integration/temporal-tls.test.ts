import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { msToTs } from '@temporalio/common/lib/time';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalConfig } from '../../src/config';
import { connectClient } from '../../src/temporal/connect';
import { repoRoot } from '../support/dev-env';
import { createVm, forgetVm } from '../support/harness';
import { makeCerts, startTlsProxy, type TlsProxy } from '../support/tls-proxy';
import { WorkerProcess } from '../support/worker-process';

// A namespace of its own: its control queue is served only by the workers started here, not by
// the suite's plain control worker, so a completed run proves the mTLS workers ran it.
const NAMESPACE = 'vmbackup-tls-test';
const NODE = 'vmbt-tls-node';
const VM = 'vmbt-tls';
const CLI = `${repoRoot}bin/vmbackup.mjs`;

let scratch: string;
let trusted: string;
let foreign: string;
let proxy: TlsProxy;
const workers: WorkerProcess[] = [];

/** The environment of a client that reaches Temporal only through the TLS endpoint. */
function tlsEnv(client?: { dir: string; name: string }): NodeJS.ProcessEnv {
  return {
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_NAMESPACE: NAMESPACE,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(trusted, 'ca.pem'),
    // The address is an IP; the check against the certificate's DNS name goes through the override.
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
    VMBACKUP_SCHEDULE_SYNC_MINUTES: '0',
    ...(client
      ? {
          TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(client.dir, `client-${client.name}.pem`),
          TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(client.dir, `client-${client.name}.key`),
        }
      : {}),
  };
}

function vmbackup(args: string[], env: NodeJS.ProcessEnv) {
  // A refused worker exits; one that were let in would run until this timeout.
  return execa(process.execPath, [CLI, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    reject: false,
    timeout: 30_000,
  });
}

async function completedListings(): Promise<number> {
  const client = await connectClient(temporalConfig(tlsEnv({ dir: trusted, name: 'cli' })));
  try {
    return (await client.workflow.count("WorkflowType = 'listBackups' AND ExecutionStatus = 'Completed'"))
      .count;
  } finally {
    await client.connection.close();
  }
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbackup-tls-'));
  trusted = path.join(scratch, 'trusted');
  foreign = path.join(scratch, 'foreign');
  await makeCerts(trusted, ['control', 'node', 'cli']);
  await makeCerts(foreign, ['intruder']);
  proxy = await startTlsProxy(trusted, process.env['TEMPORAL_ADDRESS']!);
  const admin = await connectClient(temporalConfig(tlsEnv({ dir: trusted, name: 'cli' })));
  try {
    await admin.connection.workflowService
      .registerNamespace({ namespace: NAMESPACE, workflowExecutionRetentionPeriod: msToTs('1 day') })
      .catch((err: { code?: number }) => {
        if (err.code !== 6) throw err; // ALREADY_EXISTS: an earlier run made it
      });
  } finally {
    await admin.connection.close();
  }
  await createVm({ name: VM, node: NODE, running: false });
});

afterAll(async () => {
  for (const w of workers) await w.stop();
  await proxy?.stop();
  await forgetVm(VM);
  if (scratch) await fs.rm(scratch, { recursive: true, force: true });
});

describe('Temporal over TLS with client certificates', () => {
  it('runs a workflow end to end with the workers and the CLI holding certificates of the trusted CA', async () => {
    const before = await completedListings();
    workers.push(
      ...(await Promise.all([
        WorkerProcess.start(['control'], tlsEnv({ dir: trusted, name: 'control' })),
        WorkerProcess.start(['node', '--node', NODE], tlsEnv({ dir: trusted, name: 'node' })),
      ])),
    );
    // `backups` runs the listBackups workflow: control worker (directory) and node worker (files).
    const cli = await vmbackup(['backups', VM], tlsEnv({ dir: trusted, name: 'cli' }));
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toContain(`${VM} has no backups`);
    expect(cli.exitCode).toBe(0);
    await expect.poll(completedListings).toBe(before + 1);
  });

  // One worker kind each (both connect through the same module), and a client as the CLI makes it.
  it.each([
    ['without a client certificate', ['worker', 'control'], undefined, 'client certificate required'],
    [
      'with a certificate from another CA',
      ['worker', 'node', '--node', NODE],
      'intruder',
      'client certificate not issued by the trusted CA',
    ],
  ])(
    'refuses a worker and a client %s, and nothing runs',
    async (_what, workerArgs, foreignClient, reason) => {
      const env = tlsEnv(foreignClient === undefined ? undefined : { dir: foreign, name: foreignClient });
      const before = await completedListings();
      const [worker, client] = await Promise.all([
        vmbackup(workerArgs, env),
        connectClient(temporalConfig(env)).then(
          async (c) => (await c.connection.close(), 'connected'),
          (err: Error) => err.message,
        ),
      ]);
      expect(worker.timedOut, worker.stdout).toBe(false);
      expect(worker.exitCode).toBe(1);
      expect(worker.stdout).not.toContain('running on queue');
      for (const message of [worker.stderr, client]) {
        expect(message).toContain(`cannot reach the Temporal server at ${proxy.address}`);
        expect(message).toContain(reason);
      }
      expect(await completedListings()).toBe(before);
    },
  );
});
