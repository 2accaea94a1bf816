import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertRunDate, assertVmName } from '../domain/names';
import type { VerifyReport } from '../domain/verification';
import { verifyWorkflowId, type VerifyBackupsResult } from '../workflows/verify-backups';
import { VmNameKey } from '../workflows/search-attributes';
import { errorJson, unfinished } from './client';
import { report, type Io } from './io';

export interface VerifyCommand {
  vm: string;
  backup?: string | undefined;
  all: boolean;
  json?: boolean | undefined;
}

const MiB = 1024 * 1024;

/** One report as lines: the verdict, what was read and how fast, then each bad file by name. */
export function describeReport(r: VerifyReport): string[] {
  const rate = r.durationMs > 0 ? (r.bytesRead / MiB / (r.durationMs / 1000)).toFixed(0) : '-';
  const read = `${(r.bytesRead / MiB).toFixed(1)} MiB read of ${(r.bytesExpected / MiB).toFixed(1)} MiB in ${(r.durationMs / 1000).toFixed(1)} s (${rate} MiB/s)`;
  const verdict =
    r.outcome === 'passed'
      ? `passed: ${r.files} files match their manifest, ${read}`
      : r.outcome === 'no-manifest'
        ? 'NO MANIFEST: a backup from before manifests; its structure checks out, its contents cannot be proven'
        : `FAILED: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}, ${read}`;
  return [`${r.vm} ${r.runDate}: ${verdict}`, ...r.problems.map((p) => `  ${p.file}: ${p.problem}`)];
}

/** One report in the JSON output (docs/json.md). */
export function reportJson(r: VerifyReport) {
  return {
    vm: r.vm,
    runDate: r.runDate,
    backupDir: r.backupDir,
    outcome: r.outcome,
    checkedAt: r.checkedAt,
    durationMs: r.durationMs,
    bytesRead: r.bytesRead,
    bytesExpected: r.bytesExpected,
    files: r.files,
    problems: r.problems.map((p) => ({ file: p.file, problem: p.problem })),
  };
}

/** `vmbackup verify`: verifies the chosen backups and prints each verdict; exit 1 when any failed. */
export async function runVerify(client: Client, cmd: VerifyCommand, io: Io): Promise<number> {
  assertVmName(cmd.vm);
  const rep = report(io, cmd.json);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  let result: VerifyBackupsResult;
  try {
    result = (await client.workflow.execute('verifyBackups', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: verifyWorkflowId(cmd.vm),
      args: [
        { vm: cmd.vm, backups: cmd.backup ? [cmd.backup] : undefined, all: cmd.all, timing: timingFromEnv() },
      ],
      typedSearchAttributes: [{ key: VmNameKey, value: [cmd.vm] }],
    })) as VerifyBackupsResult;
  } catch (err) {
    const u = unfinished(err, { vm: cmd.vm, what: 'verification', workflowId: verifyWorkflowId(cmd.vm) });
    rep.text(u.line);
    rep.result({ vm: cmd.vm, ok: false, error: errorJson(u), reports: [] });
    return u.exitCode;
  }
  for (const r of result.reports) describeReport(r).forEach((l) => rep.text(l));
  const ok = !result.reports.some((r) => r.outcome === 'failed');
  rep.result({ vm: cmd.vm, ok, error: null, reports: result.reports.map(reportJson) });
  return ok ? 0 : 1;
}
