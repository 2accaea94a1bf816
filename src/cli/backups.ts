import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertVmName } from '../domain/names';
import type { BackupListing } from '../workflows/list-backups';

function size(bytes: number): string {
  return bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** `vmbackup backups <vm>`: date, state, size and files of each backup. */
export async function listVmBackups(
  client: Client,
  vm: string,
  out: (line: string) => void,
): Promise<number> {
  assertVmName(vm);
  const rows = (await client.workflow.execute('listBackups', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: `list-backups/${vm}/${randomBytes(3).toString('hex')}`,
    args: [{ vm, timing: timingFromEnv() }],
  })) as BackupListing[];
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
