import { SAVE_HEADER_BYTES } from '../../domain/save-image';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { disksFromEntries } from '../../domain/vm';
import { BackupError, ErrorCode } from '../../domain/errors';
import { manifestFileName, parseManifest, type Manifest } from '../../domain/manifest';
import { assertRunDate, assertVmName } from '../../domain/names';
import {
  describeDomainXml,
  diskDifferences,
  embeddedXml,
  stateFileKind,
  verifyFileName,
  verifyOutcome,
  type DescribedDisk,
  type VerifyProblem,
  type VerifyReport,
} from '../../domain/verification';
import { parseLdif } from '../../directory/ldif-parse';
import { check } from '../../hypervisor/qemu-img';
import { PRIVATE_FILE } from '../../domain/modes';
import { heartbeat, type NodeDeps } from './context';
import { realBackupDir, type BackupRef } from './backup-dir';
import { failpoint } from './failpoints';
import { exists, writeFileAtomic } from './files';
import { hashFile } from './hashing';
import { readHead } from './read-head';
import { PLACEHOLDER_STATE } from './snapshot';

/** Files the node writes about a backup after it was made: not part of it, not in its manifest. */
const aboutTheBackup = (vm: string, runDate: string) =>
  new Set([manifestFileName(vm, runDate), verifyFileName(vm, runDate), `${vm}.drill.${runDate}`]);

async function readSmall(file: string): Promise<string | undefined> {
  return (await exists(file)) ? fs.readFile(file, 'utf8') : undefined;
}

/** Each file of the manifest re-read once against its size and SHA-256. */
async function checkContents(
  dir: string,
  manifest: Manifest,
  present: ReadonlySet<string>,
  problems: VerifyProblem[],
): Promise<number> {
  const total = manifest.files.reduce((sum, f) => sum + f.size, 0);
  let read = 0;
  for (const entry of manifest.files) {
    if (!present.has(entry.name)) {
      problems.push({ file: entry.name, problem: 'missing (listed in the manifest)' });
      continue;
    }
    const file = path.join(dir, entry.name);
    const size = (await fs.lstat(file)).size;
    if (size !== entry.size) {
      // Hashing cannot make it right: the size alone says it was truncated or grew.
      problems.push({ file: entry.name, problem: `size ${size} bytes, the manifest says ${entry.size}` });
      continue;
    }
    const before = read;
    const digest = await hashFile(file, (bytes) =>
      heartbeat({ step: 'verify', file: entry.name, bytes: before + bytes, total }),
    );
    read += digest.size;
    failpoint('verify:hash:after');
    if (digest.sha256 !== entry.sha256)
      problems.push({
        file: entry.name,
        problem: `SHA-256 ${digest.sha256} differs from the manifest's ${entry.sha256}`,
      });
  }
  return read;
}

async function checkState(dir: string, name: string, vm: string, problems: VerifyProblem[]): Promise<void> {
  const file = path.join(dir, name);
  if (!(await exists(file))) return void problems.push({ file: name, problem: 'missing' });
  const head = await readHead(file, Math.max(SAVE_HEADER_BYTES, PLACEHOLDER_STATE.length + 1));
  const kind = stateFileKind(head, PLACEHOLDER_STATE);
  if (kind.kind === 'bad') return void problems.push({ file: name, problem: kind.problem });
  if (kind.kind === 'placeholder') return;
  const data = await readHead(file, SAVE_HEADER_BYTES + kind.dataBytes);
  const xml = describeDomainXml(embeddedXml(data.subarray(SAVE_HEADER_BYTES)));
  if ('error' in xml) problems.push({ file: name, problem: `the domain XML in its header ${xml.error}` });
  else if (xml.name !== vm)
    problems.push({ file: name, problem: `it saved the domain ${xml.name}, not ${vm}` });
}

function ldifDisks(vm: string, text: string): DescribedDisk[] | string {
  try {
    const entries = parseLdif(text).filter((e) => e.attributes['sstdisk']);
    return disksFromEntries(vm, entries).map((d) => ({ target: d.target, source: d.sourceFile }));
  } catch (err) {
    return (err as Error).message;
  }
}

/** XML and LDIF parse, describe the same disks, and every disk has its image here (checked by qemu-img). */
async function checkDescriptions(
  dir: string,
  vm: string,
  runDate: string,
  present: ReadonlySet<string>,
  problems: VerifyProblem[],
): Promise<void> {
  const xmlName = `${vm}.xml.${runDate}`;
  const ldifName = `${vm}.ldif.${runDate}`;
  const xmlText = await readSmall(path.join(dir, xmlName));
  const ldifText = await readSmall(path.join(dir, ldifName));
  if (xmlText === undefined) problems.push({ file: xmlName, problem: 'missing' });
  if (ldifText === undefined) problems.push({ file: ldifName, problem: 'missing' });
  const xml = xmlText === undefined ? undefined : describeDomainXml(xmlText);
  if (xml && 'error' in xml) problems.push({ file: xmlName, problem: `it ${xml.error}` });
  else if (xml && xml.name !== vm)
    problems.push({ file: xmlName, problem: `it describes ${xml.name}, not ${vm}` });
  const ldif = ldifText === undefined ? undefined : ldifDisks(vm, ldifText);
  if (typeof ldif === 'string') problems.push({ file: ldifName, problem: `it does not parse: ${ldif}` });
  if (xml && !('error' in xml) && Array.isArray(ldif))
    for (const d of diskDifferences(xml.disks, ldif))
      problems.push({ file: `${xmlName}, ${ldifName}`, problem: d });
  if (!xml || 'error' in xml) return;
  for (const d of xml.disks) {
    const image = `${path.basename(d.source)}.${runDate}`;
    if (!present.has(image)) {
      problems.push({ file: image, problem: `missing: the image of disk ${d.target}` });
      continue;
    }
    const result = await check(path.join(dir, image), true);
    if (!result.ok) problems.push({ file: image, problem: `qemu-img check: ${lastLines(result.output)}` });
  }
}

const lastLines = (text: string) => text.trim().split('\n').slice(-3).join(' ').slice(0, 400);

/**
 * verify: re-reads every file of a backup against its manifest (read once), checks the
 * images with `qemu-img check`, the state file's header, that XML and LDIF parse and
 * describe the same disks, and that each disk has its image. Read-only on the backup; the
 * report is written next to it as `<vm>.verify.<date>` and returned.
 */
export async function verifyBackup(deps: NodeDeps, input: BackupRef): Promise<VerifyReport> {
  assertVmName(input.vm);
  assertRunDate(input.runDate);
  const { vm, runDate } = input;
  const started = Date.now();
  const dir = await realBackupDir(
    deps,
    input,
    (why) =>
      new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `cannot verify backup ${runDate} of ${vm}: ${why}`,
      ),
  );
  if (dir === undefined)
    throw new BackupError(ErrorCode.missingFiles, `backup ${runDate} of ${vm} not found on this node`);
  const problems: VerifyProblem[] = [];
  const present = new Set(
    (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name),
  );
  const manifestName = manifestFileName(vm, runDate);
  let manifest: Manifest | undefined;
  if (present.has(manifestName)) {
    try {
      manifest = parseManifest(await fs.readFile(path.join(dir, manifestName), 'utf8'), vm, runDate);
    } catch (err) {
      problems.push({ file: manifestName, problem: `unreadable: ${(err as Error).message}` });
    }
  }
  let bytesRead = 0;
  if (manifest) {
    bytesRead = await checkContents(dir, manifest, present, problems);
    const listed = new Set(manifest.files.map((f) => f.name));
    const extra = aboutTheBackup(vm, runDate);
    for (const name of present)
      if (!listed.has(name) && !extra.has(name) && !name.endsWith('.tmp'))
        problems.push({ file: name, problem: 'not in the manifest' });
  }
  await checkState(dir, `${vm}.state.${runDate}`, vm, problems);
  // A hung qemu-img throws a transient error: the activity is tried again, no verdict is made.
  await checkDescriptions(dir, vm, runDate, present, problems);
  const report: VerifyReport = {
    vm,
    runDate,
    backupDir: dir,
    outcome: verifyOutcome(present.has(manifestName), problems),
    checkedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
    bytesRead,
    bytesExpected: manifest?.files.reduce((sum, f) => sum + f.size, 0) ?? 0,
    files: manifest?.files.length ?? 0,
    problems,
  };
  failpoint('verify:report:before');
  await writeFileAtomic(
    path.join(dir, verifyFileName(vm, runDate)),
    `${JSON.stringify(report, null, 2)}\n`,
    PRIVATE_FILE,
  );
  return report;
}
