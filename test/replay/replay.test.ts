import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';

// Histories recorded from real runs (`temporal workflow show -o json`). Replaying them with
// today's workflow code fails on any change that would break workflows already running.
const dir = fileURLToPath(new URL('./histories', import.meta.url));
const workflowsPath = fileURLToPath(new URL('../../src/workflows/index.ts', import.meta.url));
let bundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  bundle = await bundleWorkflowCode({
    workflowsPath,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });
});

const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();

describe('workflow replay', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });

  it.each(files)('replays %s without nondeterminism', async (file) => {
    // The worker converts the CLI's JSON form of a history itself.
    const history: unknown = JSON.parse(await fs.readFile(path.join(dir, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, path.basename(file, '.json'));
  });
});
