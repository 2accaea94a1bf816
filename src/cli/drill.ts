import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertRunDate, assertVmName } from '../domain/names';
import type { DrillReport } from '../activities/node/drill';
import { drillWorkflowId } from '../workflows/drill-backup';
import { VmNameKey } from '../workflows/search-attributes';
import { errorJson, unfinished } from './client';
import { report, type Io } from './io';

/** The drill's verdict as lines: outcome, scratch VM, duration, then each problem. */
export function describeDrill(r: DrillReport): string[] {
  const head = `${r.vm} ${r.runDate}: drill ${r.outcome === 'passed' ? 'passed' : 'FAILED'} (scratch VM ${r.scratch}, from ${r.from === 'state' ? 'its saved state' : 'a boot'}, ${(r.durationMs / 1000).toFixed(1)} s)`;
  return [head, ...r.problems.map((p) => `  ${p}`), ...(r.file ? [`  result: ${r.file}`] : [])];
}

/** The drill's report in the JSON output (docs/json.md). */
export function drillJson(r: DrillReport) {
  return {
    drillId: r.drillId,
    vm: r.vm,
    runDate: r.runDate,
    outcome: r.outcome,
    scratch: r.scratch,
    from: r.from,
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    problems: r.problems,
    file: r.file ?? null,
  };
}

/** `vmbackup drill`: drills one backup and prints the verdict; exit 1 when it failed. */
export async function runDrill(
  client: Client,
  cmd: { vm: string; backup?: string | undefined; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  assertVmName(cmd.vm);
  const rep = report(io, cmd.json);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  let drill: DrillReport;
  try {
    drill = (await client.workflow.execute('drillBackup', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: drillWorkflowId(cmd.vm),
      args: [{ vm: cmd.vm, backup: cmd.backup, timing: timingFromEnv() }],
      typedSearchAttributes: [{ key: VmNameKey, value: [cmd.vm] }],
    })) as DrillReport;
  } catch (err) {
    const u = unfinished(err, { vm: cmd.vm, what: 'drill', workflowId: drillWorkflowId(cmd.vm) });
    rep.text(u.line);
    rep.result({ vm: cmd.vm, ok: false, error: errorJson(u), drill: null });
    return u.exitCode;
  }
  describeDrill(drill).forEach((l) => rep.text(l));
  const ok = drill.outcome === 'passed';
  rep.result({ vm: cmd.vm, ok, error: null, drill: drillJson(drill) });
  return ok ? 0 : 1;
}
