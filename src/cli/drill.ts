import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertRunDate, assertVmName } from '../domain/names';
import type { DrillReport } from '../activities/node/drill';
import { drillWorkflowId } from '../workflows/drill-backup';
import { VmNameKey } from '../workflows/search-attributes';
import { explainUnfinished } from './client';

/** The drill's verdict as lines: outcome, scratch VM, duration, then each problem. */
export function describeDrill(r: DrillReport): string[] {
  const head = `${r.vm} ${r.runDate}: drill ${r.outcome === 'passed' ? 'passed' : 'FAILED'} (scratch VM ${r.scratch}, from ${r.from === 'state' ? 'its saved state' : 'a boot'}, ${(r.durationMs / 1000).toFixed(1)} s)`;
  return [head, ...r.problems.map((p) => `  ${p}`), ...(r.file ? [`  result: ${r.file}`] : [])];
}

/** `vmbackup drill`: drills one backup and prints the verdict; exit 1 when it failed. */
export async function runDrill(
  client: Client,
  cmd: { vm: string; backup?: string | undefined },
  out: (line: string) => void,
): Promise<number> {
  assertVmName(cmd.vm);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  let report: DrillReport;
  try {
    report = (await client.workflow.execute('drillBackup', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: drillWorkflowId(cmd.vm),
      args: [{ vm: cmd.vm, backup: cmd.backup, timing: timingFromEnv() }],
      typedSearchAttributes: [{ key: VmNameKey, value: [cmd.vm] }],
    })) as DrillReport;
  } catch (err) {
    return explainUnfinished(err, { vm: cmd.vm, what: 'drill', workflowId: drillWorkflowId(cmd.vm) }, out);
  }
  describeDrill(report).forEach((l) => out(l));
  return report.outcome === 'passed' ? 0 : 1;
}
