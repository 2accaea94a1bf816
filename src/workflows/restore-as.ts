import { upsertSearchAttributes } from '@temporalio/workflow';
import type { RestoreAsResult } from '../activities/node/restore-as';
import type { Timing } from '../config';
import { ErrorCode } from '../domain/errors';
import { assertRunDate, assertVmName } from '../domain/names';
import { directory, nodeActivities, patientDirectory } from './activities';
import { backupFailure, summarizeFailure } from './failures';
import { NodeKey } from './search-attributes';
import { story, withOutcome, type Story } from './story';

export interface RestoreAsInput {
  vm: string;
  /** The new VM's name; the workflow runs as `vm/<as>`, so no backup of that name runs meanwhile. */
  as: string;
  /** The backup's date; default the latest finished one. */
  backup?: string | undefined;
  timing: Timing;
}

export type RestoreAsWorkflowResult = Omit<RestoreAsResult, 'ldif'>;

/**
 * Restore to a new VM: the backup comes up as `as` on the original's node — new UUID and
 * MACs, its images copied next to the original's — and gets the original's backed-up
 * directory entries renamed. The original is never touched. A taken name (entry, domain or
 * image file) is refused before anything changes.
 */
export async function restoreAs(input: RestoreAsInput): Promise<RestoreAsWorkflowResult> {
  const tale = story();
  return withOutcome(
    tale,
    () => restoreAsRun(input, tale),
    () => 'finished',
  );
}

async function restoreAsRun(input: RestoreAsInput, tale: Story): Promise<RestoreAsWorkflowResult> {
  try {
    assertVmName(input.vm);
    assertVmName(input.as);
    if (input.backup !== undefined) assertRunDate(input.backup);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.cannotFindMachine);
  }
  const { vm, as } = input;
  if (vm === as)
    throw backupFailure(`the new name ${as} is the VM's own`, ErrorCode.unsupportedConfigurationValue);
  let target;
  try {
    target = await directory.loadRestoreTarget(vm, input.backup);
  } catch (err) {
    const f = summarizeFailure(err);
    throw backupFailure(`cannot restore ${vm} as ${as}: ${f.message}`, f.code);
  }
  if (await directory.vmEntryExists(as))
    throw backupFailure(
      `cannot restore ${vm} as ${as}: a VM named ${as} exists in the directory`,
      ErrorCode.wrongStateInformation,
    );
  upsertSearchAttributes([{ key: NodeKey, value: [target.vm.node] }]);
  tale.runDate(target.backupDate);
  tale.details(`Restore of backup ${target.backupDate} of ${vm} as the new VM ${as} on ${target.vm.node}`);
  const { work } = nodeActivities(target.vm.node, input.timing);
  const run = {
    vm,
    as,
    runDate: target.backupDate,
    disks: target.vm.disks,
    plan: target.plan,
    startAfter: target.plan.forceStart,
  };
  let result: RestoreAsResult;
  try {
    result = await work.restoreAs(run);
  } catch (err) {
    const f = summarizeFailure(err);
    throw backupFailure(`restore of ${vm} as ${as} from ${target.backupDate} failed: ${f.message}`, f.code);
  }
  // The machine is up: its entry must follow, however long the directory is away.
  await patientDirectory.addRestoredVm(result.ldif, {
    vm,
    as,
    node: target.vm.node,
    files: result.disks.map((d) => ({ from: d.from, to: d.file })),
    macs: result.macs,
  });
  await work.forgetRestoreAs(run);
  const { ldif: _ldif, ...rest } = result;
  return rest;
}
