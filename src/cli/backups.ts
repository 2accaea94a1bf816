import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertVmName } from '../domain/names';
import type { BackupListing } from '../workflows/list-backups';
import { report, type Io } from './io';

function size(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** One backup in the JSON output (docs/json.md). */
export function listingJson(r: BackupListing) {
  return {
    runDate: r.runDate,
    complete: r.complete,
    mode: r.mode,
    returnValue: r.returnValue ?? null,
    backupDir: r.backupDir,
    bytes: r.bytes,
    files: r.files.map((f) => ({ name: f.name, bytes: f.bytes })),
    verification: r.verification
      ? {
          outcome: r.verification.outcome,
          checkedAt: r.verification.checkedAt,
          summary: r.verification.summary ?? null,
        }
      : null,
  };
}

/** `vmbackup backups <vm>`: date, state, size and files of each backup. */
export async function listVmBackups(
  client: Client,
  cmd: { vm: string; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  const vm = cmd.vm;
  assertVmName(vm);
  const rep = report(io, cmd.json);
  const out = rep.text;
  const rows = (await client.workflow.execute('listBackups', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: `list-backups/${vm}/${randomBytes(3).toString('hex')}`,
    args: [{ vm, timing: timingFromEnv() }],
  })) as BackupListing[];
  rep.result({ vm, backups: rows.map(listingJson) });
  if (rows.length === 0) {
    out(`${vm} has no backups`);
    return 0;
  }
  out(`${'date'.padEnd(18)} ${'state'.padEnd(28)} ${'verified'.padEnd(24)} ${'size'.padStart(10)}  files`);
  for (const r of rows) {
    const state = `${r.complete ? 'complete' : 'INCOMPLETE'} (${r.mode}, ${r.returnValue ?? '-'})`;
    const v = r.verification;
    const verified = v
      ? `${v.outcome === 'failed' ? 'FAILED' : v.outcome} ${v.checkedAt.slice(0, 10)}`
      : 'never';
    const files = r.files.length ? r.files.map((f) => f.name).join(' ') : '(no files)';
    out(
      `${r.runDate.padEnd(18)} ${state.padEnd(28)} ${verified.padEnd(24)} ${size(r.bytes).padStart(10)}  ${files}`,
    );
    if (v?.outcome === 'failed' && v.summary) out(`  verification failed: ${v.summary}`);
  }
  return 0;
}
