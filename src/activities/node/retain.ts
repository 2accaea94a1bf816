import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';
import { failpoint } from './failpoints';
import { allocatedBytes, chown, ensureDir, exists, moveFile } from './files';
import { JOURNAL_FILE } from './journal';
import { disksDependingOnRetain } from './merge';
import { heartbeat, resolveRun, step, type NodeDeps } from './context';
import type { RetainResult, VmRunInput } from './types';

/**
 * retain: move every file of the run from the retain directory into
 * `<backup root>/<pool path>/<vm>/<date>/` (a rename on one filesystem, a sparse-aware
 * copy otherwise). Refuses while a live image still depends on a retained one.
 */
export async function retain(deps: NodeDeps, input: VmRunInput): Promise<RetainResult> {
  const paths = resolveRun(deps, input);
  const plan = input.plan;
  const files = [
    {
      from: paths.state.retained,
      to: paths.state.backup,
      disk: false,
      code: ErrorCode.copyFileToBackupFailed,
    },
    { from: paths.xml.retained, to: paths.xml.backup, disk: false, code: ErrorCode.copyXmlToBackupFailed },
    {
      from: paths.ldif.retained,
      to: paths.ldif.backup,
      disk: false,
      code: ErrorCode.copyEntryToBackupFailed,
    },
    ...paths.disks.map((d) => ({
      from: d.retained,
      to: d.backup,
      disk: true,
      code: ErrorCode.copyImageToBackupFailed,
    })),
  ];
  if (await exists(paths.layout.retainDir)) {
    const blocking = await disksDependingOnRetain(paths);
    if (blocking.length) {
      throw new BackupError(
        ErrorCode.wrongStateInformation,
        `disks ${blocking.join(', ')} still depend on the retain directory: merge first`,
      );
    }
    if (!(await exists(plan.backupRoot)))
      throw new BackupError(ErrorCode.backupRootMissing, `backup root ${plan.backupRoot} does not exist`);
    await step(ErrorCode.cannotCreateDirectory, `create ${paths.layout.backupDir}`, () =>
      ensureDir(paths.layout.backupDir, {
        mode: plan.directoryPermission,
        user: plan.directoryOwner,
        group: plan.directoryGroup,
      }),
    );
    let i = 0;
    for (const f of files) {
      i++;
      heartbeat({ file: path.basename(f.to), done: i - 1, of: files.length });
      await step(f.code, `retain ${path.basename(f.from)}`, async () => {
        if (!(await exists(f.from)) && !(await exists(f.to)))
          throw new BackupError(ErrorCode.missingFiles, `${f.from} is missing`);
        await moveFile(f.from, f.to, () =>
          heartbeat({ file: path.basename(f.to), done: i - 1, of: files.length }),
        );
      });
      if (f.disk) {
        await step(ErrorCode.imagePermission, `permission of ${f.to}`, () =>
          fs.chmod(f.to, plan.imagePermission),
        );
        await step(ErrorCode.imageOwner, `owner of ${f.to}`, () =>
          chown(f.to, plan.imageOwner, plan.imageGroup),
        );
      }
      failpoint('retain-after-file');
    }
    await fs.rm(path.join(paths.layout.retainDir, JOURNAL_FILE), { force: true });
    const rest = await fs.readdir(paths.layout.retainDir);
    if (rest.some((f) => !f.endsWith('.tmp') && !f.startsWith('.'))) {
      throw new BackupError(
        ErrorCode.retainNotFullyDeleted,
        `retain directory ${paths.layout.retainDir} still holds ${rest.join(', ')}`,
      );
    }
    await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
  }
  let bytes = 0;
  for (const f of files) {
    if (!(await exists(f.to)))
      throw new BackupError(ErrorCode.missingFiles, `${f.to} is missing from the backup`);
    bytes += await allocatedBytes(f.to);
  }
  return { backupDir: paths.layout.backupDir, files: files.map((f) => path.basename(f.to)), bytes };
}
