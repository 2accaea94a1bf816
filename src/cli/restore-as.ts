import type { Client } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../config';
import { assertRunDate, assertVmName } from '../domain/names';
import { vmWorkflowId } from '../workflows/ids';
import type { RestoreAsWorkflowResult } from '../workflows/restore-as';
import { VmNameKey } from '../workflows/search-attributes';
import { errorJson, unfinished } from './client';
import { report, type Io } from './io';

/** `vmbackup restore <vm> --as <new>`: a new VM from the backup, the original untouched. */
export async function runRestoreAs(
  client: Client,
  cmd: { vm: string; as: string; backup?: string | undefined; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  assertVmName(cmd.vm);
  const rep = report(io, cmd.json);
  const out = rep.text;
  assertVmName(cmd.as);
  if (cmd.backup !== undefined) assertRunDate(cmd.backup);
  let r: RestoreAsWorkflowResult;
  try {
    r = (await client.workflow.execute('restoreAs', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: vmWorkflowId(cmd.as),
      args: [{ vm: cmd.vm, as: cmd.as, backup: cmd.backup, timing: timingFromEnv() }],
      typedSearchAttributes: [{ key: VmNameKey, value: [cmd.as] }],
    })) as RestoreAsWorkflowResult;
  } catch (err) {
    const u = unfinished(err, { vm: cmd.as, what: 'run', workflowId: vmWorkflowId(cmd.as) });
    out(u.line);
    rep.result({ vm: cmd.vm, as: cmd.as, ok: false, error: errorJson(u), restored: null });
    return u.exitCode;
  }
  out(`${r.as}: restored from backup ${r.runDate} of ${r.vm} (VM ${r.state}, UUID ${r.uuid})`);
  for (const d of r.disks) out(`  disk ${d.target}: ${d.file}`);
  for (const m of r.macs) out(`  MAC ${m.from} -> ${m.to}`);
  rep.result({
    vm: cmd.vm,
    as: cmd.as,
    ok: true,
    error: null,
    restored: {
      vm: r.vm,
      as: r.as,
      runDate: r.runDate,
      state: r.state,
      uuid: r.uuid,
      disks: r.disks.map((d) => ({ target: d.target, file: d.file })),
      macs: r.macs.map((m) => ({ from: m.from, to: m.to })),
    },
  });
  return 0;
}
