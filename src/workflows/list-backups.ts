import type { BackupFiles } from '../activities/node/describe-backups';
import type { Timing } from '../config';
import { isCompleteRun } from '../domain/runs';
import type { VerificationMark } from '../domain/verification';
import { directory, nodeActivities } from './activities';

export interface BackupListing {
  runDate: string;
  mode: string;
  returnValue: number | undefined;
  complete: boolean;
  backupDir: string;
  files: BackupFiles['files'];
  bytes: number;
  /** The last verification, as marked on the run leaf; absent when never verified. */
  verification?: VerificationMark | undefined;
}

/** A VM's backups as the directory and its node see them: leaf state and the files present. */
export async function listBackups(input: { vm: string; timing: Timing }): Promise<BackupListing[]> {
  const target = await directory.loadBackupTarget(input.vm);
  const runs = await directory.listRuns(input.vm);
  const { probe } = nodeActivities(target.vm.node, input.timing);
  const files = await probe.describeBackups({
    vm: input.vm,
    runDate: runs[0]?.runDate ?? '20000101T000000Z',
    disks: target.vm.disks,
    plan: target.plan,
    runDates: runs.map((r) => r.runDate),
  });
  return runs.map((r, i) => ({
    runDate: r.runDate,
    mode: r.mode,
    returnValue: r.returnValue,
    complete: isCompleteRun(r),
    backupDir: files[i]!.backupDir,
    files: files[i]!.files,
    bytes: files[i]!.bytes,
    ...(r.verification && { verification: r.verification }),
  }));
}
