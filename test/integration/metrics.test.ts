import { msToTs } from '@temporalio/common/lib/time';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import type { Client } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_TASK_QUEUE, temporalConfig, timingFromEnv } from '../../src/config';
import { blankRamLoaders, ensureRamBlob } from '../../src/dev/guest-ram';
import { freeLoopbackPort } from '../../src/observability/server';
import { connectClient } from '../../src/temporal/connect';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import { vmWorkflowId } from '../../src/workflows/ids';
import * as searchAttributes from '../../src/workflows/search-attributes';
import { createVm, forgetVm, MiB, nextRunDate, virsh } from '../support/harness';
import { samples, scrape, valueOf, type Sample } from '../support/metrics';
import { WorkerProcess } from '../support/worker-process';

// A namespace of its own: its control queue is served only by the control worker started
// here (with metrics), not by the suite's, so every run end is counted where we scrape.
const NAMESPACE = 'vmbackup-metrics-test';
const NODE = 'vmbt-node-metrics';
const VM = 'vmbt-metrics';
const FAILING = 'vmbt-metrics-fail';

let client: Client;
let control: WorkerProcess;
let node: WorkerProcess;
const address = { control: '', node: '' };

/** The namespace, with the search attributes the workflows set. */
async function ensureNamespace(): Promise<void> {
  const admin = await connectClient(temporalConfig());
  try {
    await admin.connection.workflowService
      .registerNamespace({ namespace: NAMESPACE, workflowExecutionRetentionPeriod: msToTs('1 day') })
      .catch((err: { code?: number }) => {
        if (err.code !== 6) throw err; // ALREADY_EXISTS: an earlier run made it
      });
    const have = await admin.connection.operatorService.listSearchAttributes({ namespace: NAMESPACE });
    // Every search attribute the workflows set.
    const missing = Object.values(searchAttributes).filter((k) => !(k.name in (have.customAttributes ?? {})));
    if (missing.length)
      await admin.connection.operatorService.addSearchAttributes({
        namespace: NAMESPACE,
        searchAttributes: Object.fromEntries(
          missing.map((k) => [k.name, encodeSearchAttributeIndexedValueType(k.type)!]),
        ),
      });
  } finally {
    await admin.connection.close();
  }
}

function startBackup(vm: string) {
  return client.workflow.start('backupVm', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: vmWorkflowId(vm),
    args: [{ vm, runDate: nextRunDate(), timing: timingFromEnv() }],
  });
}

beforeAll(async () => {
  await ensureNamespace();
  const env = { TEMPORAL_NAMESPACE: NAMESPACE, VMBACKUP_SCHEDULE_SYNC_MINUTES: '0' };
  address.control = `127.0.0.1:${await freeLoopbackPort()}`;
  address.node = `127.0.0.1:${await freeLoopbackPort()}`;
  [control, node] = await Promise.all([
    WorkerProcess.start(['control'], { ...env, VMBACKUP_METRICS_ADDRESS: address.control }),
    WorkerProcess.start(['node', '--node', NODE], {
      ...env,
      VMBACKUP_METRICS_ADDRESS: address.node,
      VMBACKUP_FAULTS: `snapshot:restore-vm:fault@${FAILING}`,
    }),
  ]);
  client = await connectClient(temporalConfig({ ...process.env, TEMPORAL_NAMESPACE: NAMESPACE }));
  for (const vm of [VM, FAILING])
    await client.workflow
      .getHandle(vmWorkflowId(vm))
      .terminate('test starts afresh')
      .catch(() => undefined);
});

afterAll(async () => {
  await Promise.all([control?.stop(), node?.stop()]);
  await client?.connection.close();
  for (const vm of [VM, FAILING]) await forgetVm(vm);
});

/** The node worker's and the control worker's log lines that are JSON, parsed. */
function jsonLines(worker: WorkerProcess): Array<Record<string, unknown>> {
  return worker.output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('worker metrics and logs', () => {
  it('serve the SDK metrics during a real backup, and the backup count, downtime, bytes and last success after it', async () => {
    const blob = await ensureRamBlob('vmbt-metrics-48m', 48 * MiB);
    await createVm({ name: VM, node: NODE, memoryMiB: 128, ramData: blob });
    await blankRamLoaders(VM, blob);
    expect(await virsh.state(VM)).toBe('running');

    const handle = await startBackup(VM);
    // During the run: both workers answer with the SDK's metrics and their own.
    const during = { node: await scrape(address.node), control: await scrape(address.control) };
    const { workflowExecutionInfo } = await handle.describe().then((d) => d.raw);
    expect(workflowExecutionInfo?.status).toBe(
      proto.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
    );
    expect(valueOf(during.node, 'vmbackup_worker_up', { role: 'node', node: NODE })).toBe(1);
    expect(valueOf(during.control, 'vmbackup_worker_up', { role: 'control' })).toBe(1);
    expect(
      samples(during.node, 'temporal_num_pollers', {
        task_queue: `node-${NODE}`,
        poller_type: 'activity_task',
      }).length,
    ).toBe(1);
    expect(
      samples(during.control, 'temporal_num_pollers', { task_queue: CONTROL_TASK_QUEUE }).length,
    ).toBeGreaterThan(0);
    expect(valueOf(during.control, 'vmbackup_backups_total', { vm: VM })).toBeUndefined();

    const result = (await handle.result()) as BackupVmResult;
    const endedAt = Date.now() / 1000;
    expect(result.wasRunning).toBe(true);
    expect(result.downtimeMs).toBeGreaterThan(0);

    const after = { node: await scrape(address.node), control: await scrape(address.control) };
    // Counted once, where the run leaf was marked finished.
    expect(valueOf(after.control, 'vmbackup_backups_total', { vm: VM, outcome: 'finished' })).toBe(1);
    expect(valueOf(after.control, 'vmbackup_backups_total', { vm: VM, outcome: 'failed' })).toBeUndefined();
    expect(samples(after.control, 'vmbackup_backups_total', { vm: VM })[0]?.labels['node']).toBe(NODE);
    const lastSuccess = valueOf(after.control, 'vmbackup_last_success_timestamp_seconds', { vm: VM })!;
    expect(Math.abs(endedAt - lastSuccess)).toBeLessThan(60);
    // The snapshot's downtime, as the workflow reported it: above 0 and below a minute.
    const downtime = valueOf(after.node, 'vmbackup_last_downtime_seconds', { vm: VM, node: NODE })!;
    expect(downtime).toBeCloseTo(result.downtimeMs / 1000, 6);
    expect(downtime).toBeGreaterThan(0);
    expect(downtime).toBeLessThan(60);
    expect(valueOf(after.node, 'vmbackup_downtime_seconds_count', { node: NODE, mode: 'save' })).toBe(1);
    // The retained backup: its state file alone holds the guest's RAM.
    expect(valueOf(after.node, 'vmbackup_backup_bytes', { vm: VM, node: NODE })).toBeGreaterThan(48 * MiB);
    expect(valueOf(after.node, 'vmbackup_backup_files', { vm: VM, node: NODE })).toBe(result.files.length);
    for (const step of ['snapshot', 'merge', 'retain'])
      expect(
        valueOf(after.node, 'vmbackup_step_duration_seconds_count', { step, node: NODE }),
        step,
      ).toBeGreaterThanOrEqual(1);
    // The SDK's own: the node's activities ran, the control's workflow tasks too.
    const executed = (all: Sample[], name: string, labels: Record<string, string>) =>
      samples(all, name, labels).reduce((n, s) => n + s.value, 0);
    expect(
      executed(after.node, 'temporal_activity_execution_latency_count', { activity_type: 'snapshot' }),
    ).toBeGreaterThanOrEqual(1);
    expect(executed(after.control, 'temporal_workflow_task_execution_latency_count', {})).toBeGreaterThan(0);

    // Every line the node worker wrote about the run is JSON with the VM, node and run.
    // (The Runtime holds log lines back for 100 ms, to put them in order.)
    const lineOf = (worker: WorkerProcess, vm: string, msg: string) =>
      jsonLines(worker).find((l) => l['msg'] === msg && l['workflowId'] === vmWorkflowId(vm));
    await expect.poll(() => lineOf(node, VM, 'snapshot done')).toBeDefined();
    const snapshotDone = lineOf(node, VM, 'snapshot done');
    expect(snapshotDone).toMatchObject({
      level: 'info',
      vm: VM,
      node: NODE,
      activity: 'snapshot',
      attempt: 1,
      runDate: result.runDate,
      workflowType: 'backupVm',
    });
    expect(snapshotDone?.['runId']).toEqual(expect.any(String));
    expect(snapshotDone?.['downtimeMs']).toBe(result.downtimeMs);
    await expect.poll(() => lineOf(control, VM, 'backup finished')).toBeDefined();
    const controlEnd = lineOf(control, VM, 'backup finished');
    expect(controlEnd).toMatchObject({ vm: VM, activity: 'updateRun', runDate: result.runDate });
  });

  it('counts a failed backup as failed, and its lines carry the VM and run', async () => {
    await createVm({ name: FAILING, node: NODE });
    const handle = await startBackup(FAILING);
    await expect(handle.result()).rejects.toThrow();
    const [controlMetrics, nodeMetrics] = await Promise.all([scrape(address.control), scrape(address.node)]);
    expect(valueOf(controlMetrics, 'vmbackup_backups_total', { vm: FAILING, outcome: 'failed' })).toBe(1);
    expect(
      valueOf(controlMetrics, 'vmbackup_backups_total', { vm: FAILING, outcome: 'finished' }),
    ).toBeUndefined();
    expect(
      valueOf(controlMetrics, 'vmbackup_last_success_timestamp_seconds', { vm: FAILING }),
    ).toBeUndefined();
    expect(
      valueOf(nodeMetrics, 'vmbackup_activity_failures_total', {
        role: 'node',
        node: NODE,
        activity: 'snapshot',
      }),
    ).toBeGreaterThanOrEqual(1);
    // The SDK's warning of the failed step, with the interceptor's VM and node.
    const lineOf = (worker: WorkerProcess, msg: string) =>
      jsonLines(worker).find((l) => l['msg'] === msg && l['workflowId'] === vmWorkflowId(FAILING));
    await expect.poll(() => lineOf(node, 'Activity failed')).toBeDefined();
    const failed = lineOf(node, 'Activity failed');
    expect(failed).toMatchObject({ level: 'warn', vm: FAILING, node: NODE, activity: 'snapshot' });
    expect(failed?.['runId']).toEqual(expect.any(String));
    await expect.poll(() => lineOf(control, 'backup failed')).toMatchObject({ vm: FAILING, level: 'info' });
  });

  it('write nothing but JSON lines on stderr', () => {
    for (const worker of [node, control]) {
      const other = worker.output.split('\n').filter((l) => l && !l.startsWith('{'));
      // The CLI's start line on stdout is all that is not JSON.
      expect(other.filter((l) => !/worker .*running on queue/.test(l))).toEqual([]);
      const lines = jsonLines(worker);
      expect(lines.length).toBeGreaterThan(0);
      for (const l of lines) expect(l).toMatchObject({ level: expect.any(String), time: expect.any(String) });
    }
  });
});
