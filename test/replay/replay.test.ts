import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENCRYPTED_ENCODING } from '../../src/codec/aes-gcm-codec';
import { dataConverter } from '../../src/temporal/connect';
import { loadDevEnv } from '../support/dev-env';

// Histories recorded from real runs (`temporal workflow show -o json`). Replaying them with
// today's workflow code fails on any change that would break workflows already running.
const dir = fileURLToPath(new URL('./histories', import.meta.url));
const workflowsPath = fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url));
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  bundle = await bundleWorkflowCode({
    workflowsPath,
    // As Worker.create bundles it: with the failure converter the workers use.
    failureConverterPath: converter?.failureConverterPath,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
});

const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
// Histories are recorded decoded (`temporal workflow show -o json --codec-endpoint` of a
// running `vmbackup codec-server`): each checkout's dev key is its own, so one encrypted
// with it would not replay anywhere else. The replayer still gets the workers' converter,
// as a history written before encryption meets it in production.
loadDevEnv();
const converter = dataConverter();
const encryptedEncoding = Buffer.from(ENCRYPTED_ENCODING).toString('base64');

describe('workflow replay', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });

  it('replays with the payload codec the workers use', () => {
    expect(
      converter?.payloadCodecs,
      'VMBACKUP_CODEC_KEYS_FILE is not set (run scripts/dev-up.sh)',
    ).toHaveLength(1);
  });

  it.each(files)('replays %s without nondeterminism', async (file) => {
    const text = await fs.readFile(path.join(dir, file), 'utf8');
    expect(text, `${file} is encrypted: record it with --codec-endpoint`).not.toContain(encryptedEncoding);
    // The worker converts the CLI's JSON form of a history itself.
    const history: unknown = JSON.parse(text);
    await Worker.runReplayHistory(
      { workflowBundle: bundle, ...(converter ? { dataConverter: converter } : {}) },
      history,
      path.basename(file, '.json'),
    );
  });
});
