import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { BackupError, ErrorCode } from '../../domain/errors';
import { PRIVATE_FILE } from '../../domain/modes';
import { assertRunDate, assertVmName } from '../../domain/names';
import { describeDomainXml } from '../../domain/verification';
import { convertStandalone, imageInfo, sameContent } from '../../hypervisor/qemu-img';
import { realBackupDir, type BackupRef } from './backup-dir';
import { assertFreshTarget, confineReal } from './confine-real';
import { heartbeat, type NodeDeps } from './context';
import { failpoint } from './failpoints';
import { durableRename, exists, setModeOwner, syncFile } from './files';

export interface ExportDiskInput extends BackupRef {
  /** The disk's target in the backed-up XML: `vda`, `vdb`, … */
  disk: string;
  /** Absolute path of the new qcow2 file, inside a storage root; it must not exist. */
  to: string;
}

export interface ExportDiskResult {
  file: string;
  /** The backup's image it was made from. */
  image: string;
  virtualSize: number;
  bytes: number;
}

const refuse = (why: string) => new BackupError(ErrorCode.unsupportedConfigurationValue, why);

/** The backup image of one disk, found through the backed-up XML (the disks as they were then). */
async function backupImageOf(dir: string, vm: string, runDate: string, disk: string): Promise<string> {
  const xmlFile = path.join(dir, `${vm}.xml.${runDate}`);
  if (!(await exists(xmlFile))) throw new BackupError(ErrorCode.missingFiles, `${xmlFile} is missing`);
  const xml = describeDomainXml(await fs.readFile(xmlFile, 'utf8'));
  if ('error' in xml) throw new BackupError(ErrorCode.directoryXmlInconsistency, `${xmlFile} ${xml.error}`);
  const d = xml.disks.find((x) => x.target === disk);
  if (!d)
    throw refuse(
      `backup ${runDate} of ${vm} has no disk ${disk} (it has ${xml.disks.map((x) => x.target).join(', ') || 'none'})`,
    );
  const image = path.join(dir, `${path.basename(d.source)}.${runDate}`);
  if (!(await exists(image))) throw new BackupError(ErrorCode.missingFiles, `${image} is missing`);
  return image;
}

/**
 * export: one disk of a backup as a standalone qcow2 file (its backing chain read into it),
 * owner-only, compared with the backup's image before it appears under its name. The VM
 * and the backup are only read. A file already at the name is never overwritten, unless a
 * killed attempt of this export made it (a retry then finds it equal and is done). Crash
 * points `export:convert|compare|rename:after` let the tests kill it at each step.
 */
export async function exportDisk(deps: NodeDeps, input: ExportDiskInput): Promise<ExportDiskResult> {
  assertVmName(input.vm);
  assertRunDate(input.runDate);
  const { vm, runDate } = input;
  if (typeof input.disk !== 'string' || !/^[a-z]{2,3}[a-z]{1,2}$/.test(input.disk))
    throw refuse(`disk must be a target such as vda, got ${JSON.stringify(input.disk)}`);
  if (typeof input.to !== 'string' || !path.isAbsolute(input.to) || input.to.endsWith('/'))
    throw refuse(`the export target must be an absolute file path, got ${JSON.stringify(input.to)}`);
  const roots = deps.config.storageRoots;
  const to = await confineReal(input.to, roots, 'export target', { noSymlink: true });
  const dir = await realBackupDir(deps, input, (why) =>
    refuse(`cannot export from backup ${runDate} of ${vm}: ${why}`),
  );
  if (dir === undefined)
    throw new BackupError(ErrorCode.missingFiles, `backup ${runDate} of ${vm} not found on this node`);
  const image = await backupImageOf(dir, vm, runDate, input.disk);
  const result = async (): Promise<ExportDiskResult> => ({
    file: to,
    image,
    virtualSize: (await imageInfo(to)).virtualSize,
    bytes: (await fs.stat(to)).blocks * 512,
  });

  if (await exists(to)) {
    if (Context.current().info.attempt > 1 && (await sameContent(image, to))) return result();
    throw refuse(`the export target ${to} already exists; it is never overwritten`);
  }
  const part = `${to}.part`;
  await fs.rm(part, { force: true }); // left by a killed attempt
  await assertFreshTarget(part, roots, 'export target');
  heartbeat({ step: 'export', action: 'convert', file: input.disk });
  try {
    await convertStandalone(image, part);
    failpoint('export:convert:after');
    await setModeOwner(part, { mode: PRIVATE_FILE });
    heartbeat({ step: 'export', action: 'compare', file: input.disk });
    if (!(await sameContent(image, part)))
      throw new BackupError(ErrorCode.corruptImage, `the export of ${image} differs from it`);
    await syncFile(part);
    failpoint('export:compare:after');
  } catch (err) {
    await fs.rm(part, { force: true });
    throw err;
  }
  await durableRename(part, to);
  failpoint('export:rename:after');
  return result();
}
