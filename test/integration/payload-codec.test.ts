import { promises as fs } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { originOf } from '../../src/codec/server';
import { ENCRYPTED_ENCODING } from '../../src/codec/aes-gcm-codec';
import { abortUpdate } from '../../src/workflows/messages';
import { vmWorkflowId } from '../../src/workflows/ids';
import { CONTROL_TASK_QUEUE } from '../../src/config';
import { repoRoot } from '../support/dev-env';
import { useTestNode } from '../support/lifecycle';
import { backup, createVm, startBackup, temporal } from '../support/harness';
import { startRestore, waitForStage } from '../support/restore';

const NODE = 'vmbt-node-codec';
const VM = 'vmbt-codec';
useTestNode(NODE).vms.push(VM);

const env = process.env;
const uiOrigin = originOf(env['TEMPORAL_UI_URL']!);

/** The dev server's SQLite files, as bytes: what a copy of the server's disk would show. */
async function serverDatabase(): Promise<string> {
  const parts: Buffer[] = [];
  for (const suffix of ['', '-wal', '-journal']) {
    parts.push(await fs.readFile(`${repoRoot}.dev/temporal.db${suffix}`).catch(() => Buffer.alloc(0)));
  }
  return Buffer.concat(parts).toString('latin1');
}

/** LDIF attribute names come out lower-case. */
const has = (text: string, s: string) => text.toLowerCase().includes(s.toLowerCase());

/** `temporal workflow show -o json`; the payloads' data decoded from base64 and appended. */
async function cliHistory(workflowId: string, codecEndpoint?: string): Promise<string> {
  const cliEnv = { ...env };
  delete cliEnv['TEMPORAL_CODEC_ENDPOINT'];
  const args = ['workflow', 'show', '-w', workflowId, '-o', 'json', '--address', env['TEMPORAL_ADDRESS']!];
  args.push('--namespace', env['TEMPORAL_NAMESPACE']!);
  if (codecEndpoint) args.push('--codec-endpoint', codecEndpoint);
  const { stdout } = await execa(env['TEMPORAL_CLI']!, args, { env: cliEnv, extendEnv: false });
  // Proto JSON: a payload's data and each of its metadata values are base64.
  const decoded: string[] = [];
  const b64 = (v: unknown) =>
    typeof v === 'string' && decoded.push(Buffer.from(v, 'base64').toString('latin1'));
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if ('metadata' in o || 'data' in o) {
      b64(o['data']);
      Object.values((o['metadata'] ?? {}) as Record<string, unknown>).forEach(b64);
    }
    Object.values(o).forEach(walk);
  };
  walk(JSON.parse(stdout));
  return [stdout, ...decoded].join('\n');
}

const codecServers: ResultPromise[] = [];
afterAll(async () => {
  for (const server of codecServers) {
    server.kill('SIGTERM');
    await server.catch(() => undefined);
  }
});

/** A real `vmbackup codec-server` on `port` (0: a free one); resolves with its URL. */
async function startCodecServer(port = 0): Promise<string> {
  const server = execa(
    process.execPath,
    [`${repoRoot}bin/vmbackup.mjs`, 'codec-server', '--port', String(port)],
    {
      cwd: repoRoot,
    },
  );
  codecServers.push(server);
  return new Promise((resolve, reject) => {
    let output = '';
    server.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url) resolve(url);
    });
    server.catch((err: unknown) => reject(new Error(`codec server ended: ${String(err)}`)));
  });
}

/** The first encrypted payload of a run's history, in the proto JSON the UI sends. */
async function encryptedPayloadOf(workflowId: string): Promise<unknown> {
  const args = ['workflow', 'show', '-w', workflowId, '-o', 'json', '--address', env['TEMPORAL_ADDRESS']!];
  const { stdout } = await execa(env['TEMPORAL_CLI']!, [...args, '--namespace', env['TEMPORAL_NAMESPACE']!]);
  const encoding = Buffer.from(ENCRYPTED_ENCODING).toString('base64');
  let found: unknown;
  JSON.parse(stdout, (_key, value: unknown) => {
    const v = value as { metadata?: { encoding?: string } } | null;
    if (found === undefined && v?.metadata?.encoding === encoding) found = v;
    return value;
  });
  if (found === undefined) throw new Error(`no encrypted payload in the history of ${workflowId}`);
  return found;
}

describe('payload encryption', () => {
  it('keeps LDIF, domain XML and image paths out of the server database and the plain CLI; the codec server shows them, and answers CORS only for the UI', async () => {
    const vm = await createVm({ name: VM, node: NODE, disks: 1 });
    const image = vm.disks[0]!.file;
    await backup(VM);
    // A restore up to its decision carries the backed-up and live LDIF and domain XML.
    const restore = await startRestore(VM);
    await waitForStage(restore, ['awaiting-decision']);
    await restore.executeUpdate(abortUpdate, { args: [{ reason: 'codec test' }] });
    await restore.result();

    const secrets = [`dn: sstVirtualMachine=${VM},`, `sstnode: ${NODE}`, '<domain', image];
    const db = await serverDatabase();
    // The database holds payload bytes as they are: the run's id and its encrypted payloads.
    expect(db.includes(vmWorkflowId(VM))).toBe(true);
    expect(db.includes(ENCRYPTED_ENCODING)).toBe(true);
    for (const s of [`dn: sstVirtualMachine=${VM},`, `<name>${VM}</name>`, image])
      expect(db.includes(s), s).toBe(false);

    const plain = await cliHistory(vmWorkflowId(VM));
    expect(has(plain, ENCRYPTED_ENCODING)).toBe(true);
    for (const s of secrets) expect(has(plain, s), s).toBe(false);

    const url = await startCodecServer();
    const shown = await cliHistory(vmWorkflowId(VM), url);
    for (const s of secrets) expect(has(shown, s), s).toBe(true);
    expect(has(shown, ENCRYPTED_ENCODING)).toBe(false);

    const preflight = (origin: string) =>
      fetch(`${url}/decode`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'content-type,x-namespace',
        },
      });
    const fromUi = await preflight(uiOrigin);
    expect(fromUi.status).toBe(204);
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    expect(fromUi.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
    const fromOther = await preflight('http://attacker.example');
    expect(fromOther.status).toBe(403);
    expect(fromOther.headers.get('access-control-allow-origin')).toBeNull();

    // Search attributes are indexed in clear, outside the codec: they hold names only (the
    // node here, VmName for runs of several VMs, the SDK's BuildIds).
    const description = await restore.describe();
    expect(description.searchAttributes['Node']).toEqual([NODE]);
    const attributes = JSON.stringify(description.searchAttributes);
    for (const s of secrets) expect(has(attributes, s), s).toBe(false);
  });

  it("encrypts failure messages: a failed run's message is in neither the database nor the plain CLI, and the client reads it", async () => {
    // A name of its own per run: the database keeps every earlier run's history.
    const missing = `vmbt-codec-missing-${Date.now().toString(36)}`;
    const run = await startBackup(missing);
    const message = await run.result().then(
      () => '',
      (err: { cause?: Error }) => err.cause?.message ?? '',
    );
    expect(message).toContain(missing);
    expect((await serverDatabase()).includes(message), message).toBe(false);
    const plain = await cliHistory(vmWorkflowId(missing));
    expect(has(plain, message), message).toBe(false);
    expect(plain).toContain('Encoded failure');
  });

  it("encrypts a schedule's memo, as the schedule sync writes one (plan DN, cron)", async () => {
    const client = await temporal();
    const planDn = `ou=backup,sstVirtualMachine=${VM}-memo,ou=virtual machines,o=codec-test`;
    const handle = await client.schedule.create({
      scheduleId: 'vmbackup-codec-test-memo',
      spec: { cronExpressions: ['0 3 * * *'] },
      action: {
        type: 'startWorkflow',
        workflowType: 'nightlyBackup',
        taskQueue: CONTROL_TASK_QUEUE,
        args: [],
      },
      state: { paused: true },
      memo: { planDn, vmbackupCron: '0 3 * * *' },
    });
    try {
      expect((await handle.describe()).memo).toMatchObject({ planDn });
      expect((await serverDatabase()).includes(planDn)).toBe(false);
    } finally {
      await handle.delete();
    }
  });

  it("the Temporal UI is set to decode through the codec server's endpoint, which decodes a run's payloads for the UI's origin", async () => {
    const settings = (await (await fetch(`${env['TEMPORAL_UI_URL']}/api/v1/settings`)).json()) as {
      Codec?: { Endpoint?: string };
    };
    const endpoint = env['VMBACKUP_CODEC_ENDPOINT']!;
    expect(settings.Codec?.Endpoint).toBe(endpoint);

    const url = await startCodecServer(Number(new URL(endpoint).port));
    const payload = await encryptedPayloadOf(vmWorkflowId(VM));
    const answer = await fetch(`${url}/decode`, {
      method: 'POST',
      headers: {
        Origin: uiOrigin,
        'Content-Type': 'application/json',
        'X-Namespace': env['TEMPORAL_NAMESPACE']!,
      },
      body: JSON.stringify({ payloads: [payload] }),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe(uiOrigin);
    const decoded = ((await answer.json()) as { payloads: Array<{ metadata: Record<string, string> }> })
      .payloads;
    expect(Buffer.from(decoded[0]!.metadata['encoding']!, 'base64').toString()).toBe('json/plain');
  });
});
