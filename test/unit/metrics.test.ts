import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { doneUpdate, failedUpdate, goUpdate, refusedUpdate, runningUpdate } from '../../src/domain/protocol';
import {
  recordActivity,
  runEnd,
  seedFromFleet,
  vmOfActivity,
  VmBackupMetrics,
  type ActivityEvent,
} from '../../src/observability/metrics';
import { parseListenAddress, startMetricsServer } from '../../src/observability/server';
import { repoRoot } from '../support/dev-env';
import { parseExposition, valueOf } from '../support/metrics';

const NOW = Date.UTC(2026, 11, 2, 3, 0, 0);
const metricsOf = async (m: VmBackupMetrics) => parseExposition(await m.registry.metrics());
const fresh = () => new VmBackupMetrics({ version: '1.2.3', defaultMetrics: false });

function control(activityType: string, args: unknown[], extra: Partial<ActivityEvent> = {}): ActivityEvent {
  return { role: 'control', activityType, workflowType: 'backupVm', args, durationMs: 5, now: NOW, ...extra };
}
function node(activityType: string, input: object, result: unknown, extra: Partial<ActivityEvent> = {}) {
  const ev: ActivityEvent = {
    role: 'node',
    node: 'n1',
    activityType,
    workflowType: 'backupVm',
    args: [{ vm: 'vm1', runDate: '20261202T020000Z', ...input }],
    durationMs: 2500,
    now: NOW,
    result,
    ...extra,
  };
  return ev;
}

describe('runEnd', () => {
  it('sees the end of a backup in its last leaf write, and a failure in a step error code', () => {
    expect(runEnd('backupVm', { mode: 'finished', state: 'now', returnValue: 0 })).toEqual({
      kind: 'backup',
      outcome: 'finished',
    });
    for (const u of [failedUpdate('merge', 7), refusedUpdate('snapshot', 3), failedUpdate('retain', 1)])
      expect(runEnd('backupVm', u)).toEqual({ kind: 'backup', outcome: 'failed' });
    for (const u of [goUpdate('snapshot'), runningUpdate('merge'), doneUpdate('retain')])
      expect(runEnd('backupVm', u)).toBeUndefined();
    // Retention's delete of an older backup ends nothing, even when it fails.
    expect(runEnd('backupVm', { mode: 'deleting', state: '0', returnValue: 5 })).toBeUndefined();
    expect(runEnd('backupVm', { mode: 'deleted', state: 'now', returnValue: 0 })).toBeUndefined();
  });

  it('tells a restore restored, aborted (finished with state 0) or failed', () => {
    expect(runEnd('restoreVm', { mode: 'finished', state: 'now', returnValue: 0 })?.outcome).toBe('restored');
    expect(runEnd('restoreVm', { mode: 'finished', state: '0', returnValue: 0 })?.outcome).toBe('aborted');
    expect(runEnd('restoreVm', { mode: 'restoring', state: '0', returnValue: 4 })?.outcome).toBe('failed');
    expect(runEnd('restoreVm', { mode: 'restore', state: '0' })).toBeUndefined();
    expect(runEnd('verifyBackups', { mode: 'finished', state: 'now', returnValue: 0 })).toBeUndefined();
  });
});

describe('vmOfActivity', () => {
  it('reads the VM from a node input or the first argument of a directory activity', () => {
    expect(vmOfActivity('snapshot', [{ vm: 'a', runDate: 'x' }])).toBe('a');
    expect(vmOfActivity('updateRun', ['b', '20261202T020000Z', {}])).toBe('b');
    expect(vmOfActivity('addRestoredVm', ['dn: …', { vm: 'a', as: 'c' }])).toBe('c');
    expect(vmOfActivity('fleetStatus', ['node-1'])).toBeUndefined();
    expect(vmOfActivity('listPlanSchedules', [])).toBeUndefined();
  });
});

describe('recordActivity', () => {
  it('counts a finished backup once, with the node the directory named, and sets its last success', async () => {
    const m = fresh();
    recordActivity(m, control('loadBackupTarget', ['vm1'], { result: { vm: { node: 'n1' }, plan: {} } }));
    const finished = control('updateRun', [
      'vm1',
      '20261202T020000Z',
      { mode: 'finished', state: 'now', returnValue: 0 },
    ]);
    expect(recordActivity(m, finished)).toBe('backup finished');
    // The same write reported again (a retried activity that had written): counted once.
    expect(recordActivity(m, finished)).toBeUndefined();
    const all = await metricsOf(m);
    expect(valueOf(all, 'vmbackup_backups_total', { vm: 'vm1', node: 'n1', outcome: 'finished' })).toBe(1);
    expect(valueOf(all, 'vmbackup_last_success_timestamp_seconds', { vm: 'vm1' })).toBe(NOW / 1000);
    expect(valueOf(all, 'vmbackup_build_info', { version: '1.2.3' })).toBe(1);
  });

  it('counts a failed backup as failed and leaves the last success alone; a failed attempt counts as a failure only', async () => {
    const m = fresh();
    recordActivity(m, control('updateRun', ['vm2', '20261202T020000Z', failedUpdate('snapshot', 9)]));
    recordActivity(m, node('snapshot', {}, undefined, { failed: true }));
    recordActivity(m, control('updateRun', ['vm2', '20261202T020000Z', goUpdate('snapshot')]));
    const all = await metricsOf(m);
    expect(valueOf(all, 'vmbackup_backups_total', { vm: 'vm2', outcome: 'failed' })).toBe(1);
    expect(valueOf(all, 'vmbackup_backups_total', { vm: 'vm2', outcome: 'finished' })).toBeUndefined();
    expect(valueOf(all, 'vmbackup_last_success_timestamp_seconds', { vm: 'vm2' })).toBeUndefined();
    expect(valueOf(all, 'vmbackup_activity_failures_total', { activity: 'snapshot', node: 'n1' })).toBe(1);
    expect(valueOf(all, 'vmbackup_last_downtime_seconds', { vm: 'vm1' })).toBeUndefined();
  });

  it('counts in-place restores by outcome', async () => {
    const m = fresh();
    const restore = (runDate: string, u: object) =>
      recordActivity(m, control('updateRun', ['vm1', runDate, u], { workflowType: 'restoreVm' }));
    restore('20261201T020000Z', { mode: 'finished', state: 'now', returnValue: 0 });
    restore('20261130T020000Z', { mode: 'finished', state: '0', returnValue: 0 });
    restore('20261129T020000Z', { mode: 'restoring', state: '0', returnValue: 12 });
    const all = await metricsOf(m);
    for (const outcome of ['restored', 'aborted', 'failed'])
      expect(valueOf(all, 'vmbackup_restores_total', { vm: 'vm1', kind: 'in-place', outcome })).toBe(1);
    expect(valueOf(all, 'vmbackup_backups_total', { vm: 'vm1' })).toBeUndefined();
  });

  it('takes downtime, bytes, durations and verify outcomes from the node steps’ results', async () => {
    const m = fresh();
    const snap = { wasRunning: true, downtimeMs: 1500, snapshotMs: 4000, mode: 'save' };
    recordActivity(m, node('snapshot', {}, snap));
    // The snapshot of a run finished after a rollback ('completed'): the histogram counts it once.
    recordActivity(m, node('snapshot', {}, snap));
    recordActivity(m, node('retain', {}, { backupDir: '/b', files: ['a', 'b', 'c'], bytes: 123456 }));
    recordActivity(m, node('merge', {}, { mergedDisks: ['vda'], mergeMs: 800 }, { durationMs: 900 }));
    const report = { outcome: 'failed', checkedAt: '2026-12-02T03:00:00.000Z', problems: [{}] };
    recordActivity(m, node('verifyBackup', {}, report));
    recordActivity(
      m,
      node('verifyBackup', { runDate: '20261201T020000Z' }, { ...report, outcome: 'passed' }),
    );
    const all = await metricsOf(m);
    expect(valueOf(all, 'vmbackup_last_downtime_seconds', { vm: 'vm1', node: 'n1' })).toBe(1.5);
    expect(valueOf(all, 'vmbackup_downtime_seconds_count', { node: 'n1', mode: 'save' })).toBe(1);
    expect(valueOf(all, 'vmbackup_downtime_seconds_sum', { node: 'n1', mode: 'save' })).toBe(1.5);
    expect(valueOf(all, 'vmbackup_backup_bytes', { vm: 'vm1', node: 'n1' })).toBe(123456);
    expect(valueOf(all, 'vmbackup_backup_files', { vm: 'vm1' })).toBe(3);
    expect(valueOf(all, 'vmbackup_retained_bytes_total', { node: 'n1' })).toBe(123456);
    expect(valueOf(all, 'vmbackup_last_step_duration_seconds', { step: 'merge', vm: 'vm1' })).toBe(0.9);
    expect(valueOf(all, 'vmbackup_step_duration_seconds_count', { step: 'snapshot', node: 'n1' })).toBe(2);
    expect(valueOf(all, 'vmbackup_verify_total', { vm: 'vm1', outcome: 'failed' })).toBe(1);
    expect(valueOf(all, 'vmbackup_verify_total', { vm: 'vm1', outcome: 'passed' })).toBe(1);
    // The last verification passed.
    expect(valueOf(all, 'vmbackup_last_verify_failed', { vm: 'vm1' })).toBe(0);
    expect(valueOf(all, 'vmbackup_last_verify_timestamp_seconds', { vm: 'vm1' })).toBe(NOW / 1000);
  });
});

describe('seedFromFleet', () => {
  it("takes each VM's latest complete backup from the directory and never moves the gauge back", async () => {
    const m = fresh();
    const leaf = (runDate: string, mode: string, returnValue = 0) => ({
      runDate,
      mode,
      state: runDate,
      returnValue,
      executionTimes: [],
      backupDir: undefined,
    });
    seedFromFleet(m, [
      {
        vm: 'vm1',
        node: 'n1',
        runs: [
          leaf('20261130T020000Z', 'finished'),
          leaf('20261201T020000Z', 'finished'),
          leaf('20261202T020000Z', 'merging', 3),
        ],
      },
      { vm: 'vm2', node: 'n2', runs: [leaf('20261202T020000Z', 'snapshotting')] },
    ]);
    let all = await metricsOf(m);
    expect(valueOf(all, 'vmbackup_last_success_timestamp_seconds', { vm: 'vm1', node: 'n1' })).toBe(
      Date.UTC(2026, 11, 1, 2, 0, 0) / 1000,
    );
    expect(valueOf(all, 'vmbackup_last_success_timestamp_seconds', { vm: 'vm2' })).toBeUndefined();
    // A backup seen finishing here is newer than the directory's older view.
    recordActivity(
      m,
      control('updateRun', ['vm1', '20261202T020000Z', { mode: 'finished', state: 'now', returnValue: 0 }]),
    );
    seedFromFleet(m, [{ vm: 'vm1', node: 'n1', runs: [leaf('20261201T020000Z', 'finished')] }]);
    all = await metricsOf(m);
    expect(valueOf(all, 'vmbackup_last_success_timestamp_seconds', { vm: 'vm1' })).toBe(NOW / 1000);
    expect(valueOf(all, 'vmbackup_backups_total', { vm: 'vm1', node: 'n1', outcome: 'finished' })).toBe(1);
  });
});

describe('the metrics server', () => {
  it('parses host:port addresses and refuses others', () => {
    expect(parseListenAddress('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListenAddress(':9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    for (const bad of ['9464', 'host', 'a:b', '1.2.3.4:99999', 'x y:1'])
      expect(() => parseListenAddress(bad)).toThrow(/VMBACKUP_METRICS_ADDRESS must be host:port/);
  });

  it('serves the registry followed by the SDK exposition, and says so when the SDK does not answer', async () => {
    const m = fresh();
    m.workerUp.set({ role: 'node', node: 'n1', task_queue: 'node-n1' }, 1);
    const sdk = await startMetricsServer({
      listen: { host: '127.0.0.1', port: 0 },
      registry: fresh().registry,
    });
    const server = await startMetricsServer({
      listen: { host: '127.0.0.1', port: 0 },
      registry: m.registry,
      sdkUrl: `http://${sdk.address}/metrics`,
    });
    try {
      const res = await fetch(`http://${server.address}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(valueOf(parseExposition(text), 'vmbackup_worker_up', { node: 'n1' })).toBe(1);
      // The other registry's build info, appended: two series of it.
      expect(parseExposition(text).filter((s) => s.name === 'vmbackup_build_info')).toHaveLength(2);
      expect((await fetch(`http://${server.address}/other`)).status).toBe(404);
      await sdk.close();
      const without = await (await fetch(`http://${server.address}/metrics`)).text();
      expect(without).toContain('# Temporal SDK metrics unavailable');
      expect(valueOf(parseExposition(without), 'vmbackup_worker_up', { node: 'n1' })).toBe(1);
    } finally {
      await server.close();
    }
  });
});

const deploy = (...p: string[]) => path.join(repoRoot, 'deploy', ...p);

/** promtool from PROMTOOL or the PATH, if there is one. */
function promtool(): string | undefined {
  const candidates = [
    process.env['PROMTOOL'],
    ...(process.env['PATH'] ?? '').split(':').map((d) => path.join(d, 'promtool')),
  ];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

/** The vmbackup_ metric names an expression uses, without the histogram suffixes. */
function vmbackupNames(expr: string): string[] {
  return [...expr.matchAll(/\bvmbackup_\w+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

describe('the sample dashboard and alert rules', () => {
  const known = new Set(
    fresh()
      .registry.getMetricsAsArray()
      .map((m) => m.name),
  );

  it('the dashboard is JSON whose queries use only metrics the workers serve', () => {
    const dashboard = JSON.parse(readFileSync(deploy('grafana', 'vmbackup-dashboard.json'), 'utf8')) as {
      panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>;
    };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const name of exprs.flatMap(vmbackupNames)) expect(known, name).toContain(name);
    for (const title of ['Backups by outcome', 'Age of the last good backup per VM', 'Workers up'])
      expect(dashboard.panels.map((p) => p.title)).toContain(title);
    expect(exprs.some((e) => e.includes('temporal_workflow_task_schedule_to_start_latency'))).toBe(true);
  });

  it('the alert rules use only metrics the workers serve', () => {
    const text = readFileSync(deploy('prometheus', 'vmbackup-alerts.yml'), 'utf8');
    const exprs = [...text.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);
    expect(exprs.length).toBeGreaterThanOrEqual(4);
    for (const name of exprs.flatMap(vmbackupNames)) expect(known, name).toContain(name);
    for (const alert of ['NoGoodBackup26h', 'NodeWorkerAbsent', 'VerifyFailed'])
      expect(text).toMatch(new RegExp(`- alert: ${alert}$`, 'm'));
  });

  // scripts/setup.sh unpacks promtool and .dev/env names it; CI must not skip the check.
  it.skipIf(!promtool() && !process.env['CI'])(
    'promtool accepts the rules and the configuration, and the rules pass their tests',
    () => {
      const run = (...args: string[]) =>
        execFileSync(promtool()!, args, { cwd: deploy('prometheus'), encoding: 'utf8', stdio: 'pipe' });
      expect(run('check', 'rules', 'vmbackup-alerts.yml')).toContain('SUCCESS');
      expect(run('check', 'config', 'prometheus.yml')).toContain('SUCCESS');
      expect(run('test', 'rules', 'vmbackup-alerts.test.yml')).toContain('SUCCESS');
    },
  );
});
