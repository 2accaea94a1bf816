import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertRunDate, assertVmName } from '../domain/names';
import type { ExportDiskResult } from '../activities/node/export-disk';
import { exportWorkflowId } from '../workflows/export-disk';
import { VmNameKey } from '../workflows/search-attributes';
import { errorJson, unfinished } from './client';
import { report, type Io } from './io';

export interface ExportCommand {
  vm: string;
  backup?: string | undefined;
  disk: string;
  to: string;
  json?: boolean | undefined;
}

/** `vmbackup export`: one disk of a backup as a standalone qcow2 file on the VM's node. */
export async function runExport(client: Client, cmd: ExportCommand, io: Io): Promise<number> {
  assertVmName(cmd.vm);
  const rep = report(io, cmd.json);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  try {
    const r = (await client.workflow.execute('exportDisk', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: exportWorkflowId(cmd.vm),
      args: [{ vm: cmd.vm, backup: cmd.backup, disk: cmd.disk, to: cmd.to, timing: timingFromEnv() }],
      typedSearchAttributes: [{ key: VmNameKey, value: [cmd.vm] }],
    })) as ExportDiskResult & { runDate: string };
    rep.text(
      `${cmd.vm} ${r.runDate} ${cmd.disk}: exported to ${r.file} (${(r.virtualSize / 1024 ** 2).toFixed(0)} MiB virtual, ${(r.bytes / 1024 ** 2).toFixed(1)} MiB on disk), equal to ${r.image}`,
    );
    rep.result({
      vm: cmd.vm,
      ok: true,
      error: null,
      runDate: r.runDate,
      disk: cmd.disk,
      file: r.file,
      image: r.image,
      virtualSize: r.virtualSize,
      bytes: r.bytes,
    });
    return 0;
  } catch (err) {
    const u = unfinished(err, { vm: cmd.vm, what: 'export', workflowId: exportWorkflowId(cmd.vm) });
    rep.text(u.line);
    rep.result({
      vm: cmd.vm,
      ok: false,
      error: errorJson(u),
      runDate: cmd.backup ?? null,
      disk: cmd.disk,
      file: cmd.to,
      image: null,
      virtualSize: null,
      bytes: null,
    });
    return u.exitCode;
  }
}
