import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureRamBlob, removeRamBlob } from '../../src/dev/guest-ram';
import { parseRunDate } from '../../src/domain/names';
import { vmWorkflowId } from '../../src/workflows/ids';
import { OutcomeKey, RunDateKey } from '../../src/workflows/search-attributes';
import { backupMany, createVm, MiB, nextRunDate, temporal } from '../support/harness';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmbt-node-story';
const FINE = 'vmbt-story-fine';
const FAILED = 'vmbt-story-failed';
const BLOB = 'story-128m';
const node = useTestNode(NODE, { VMBACKUP_FAULTS: `snapshot:restore-vm:fault@${FAILED}` });
node.vms.push(FINE, FAILED);
afterAll(() => removeRamBlob(BLOB).catch(() => undefined));

/** `temporal workflow list -q` as an operator types it: the workflow IDs it prints. */
async function listIds(query: string): Promise<string[]> {
  const r = await execa(process.env['TEMPORAL_CLI']!, [
    'workflow',
    'list',
    '--address',
    process.env['TEMPORAL_ADDRESS']!,
    '--namespace',
    process.env['TEMPORAL_NAMESPACE']!,
    '--query',
    query,
    '--output',
    'json',
  ]);
  const rows = r.stdout.trim() ? (JSON.parse(r.stdout) as Array<{ execution: { workflowId: string } }>) : [];
  return rows.map((x) => x.execution.workflowId).sort();
}

/** Visibility is eventually consistent: asks again for a while until the answer is `want`. */
async function listUntil(query: string, want: string[]): Promise<string[]> {
  let got: string[] = [];
  for (let i = 0; i < 40; i++) {
    got = await listIds(query);
    if (JSON.stringify(got) === JSON.stringify(want)) break;
    await sleep(500);
  }
  return got;
}

describe('the Temporal UI and workflow list tell the story of a night', () => {
  it('marks each run with its run date and outcome, so "what failed last night on this node" is one query; summaries and details name VM, node, mode and run', async () => {
    const blob = await ensureRamBlob(BLOB, 128 * MiB);
    await createVm({ name: FINE, node: NODE, disks: 1, memoryMiB: 192, ramData: blob });
    await createVm({ name: FAILED, node: NODE, disks: 1 });
    const runDate = nextRunDate();
    const result = await backupMany([FINE, FAILED], runDate);
    expect(result.results.map((r) => [r.vm, r.outcome])).toEqual([
      [FINE, 'backed-up'],
      [FAILED, 'failed'],
    ]);

    const client = await temporal();
    const coordinator = client.workflow.getHandle(`backup-vms/${runDate}-test`);
    const fine = client.workflow.getHandle(vmWorkflowId(FINE));
    const failed = client.workflow.getHandle(vmWorkflowId(FAILED));
    const instant = parseRunDate(runDate);
    for (const [h, outcome] of [
      [fine, 'finished'],
      [failed, 'failed'],
      [coordinator, 'partial'],
    ] as const) {
      const attrs = (await h.describe()).typedSearchAttributes;
      expect(attrs.get(OutcomeKey), h.workflowId).toBe(outcome);
      expect(attrs.get(RunDateKey)?.toISOString(), h.workflowId).toBe(instant.toISOString());
    }

    // The operator's question, as typed at the CLI.
    const since = new Date(instant.getTime() - 1000).toISOString();
    const failedHere = `Outcome = 'failed' AND Node = '${NODE}' AND RunDate >= '${since}'`;
    expect(await listUntil(failedHere, [vmWorkflowId(FAILED)])).toEqual([vmWorkflowId(FAILED)]);
    const finishedHere = `Outcome = 'finished' AND Node = '${NODE}' AND RunDate >= '${since}'`;
    expect(await listUntil(finishedHere, [vmWorkflowId(FINE)])).toEqual([vmWorkflowId(FINE)]);

    // What the UI shows: the child's summary and the run's current details.
    expect(await (await fine.describe()).staticSummary()).toBe(
      `Backup of ${FINE}, run ${runDate}, with 1 other VM(s)`,
    );
    const metadata = (await fine.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(metadata.currentDetails).toBe(
      `Backup of ${FINE} on ${NODE} (save mode), run ${runDate}: finished`,
    );
    const failedDetails = (await failed.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(failedDetails.currentDetails).toBe(
      `Backup of ${FAILED} on ${NODE} (save mode), run ${runDate}: failed`,
    );
  }, 300_000);
});
