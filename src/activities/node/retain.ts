import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  decideRetain,
  type BackupSpace,
  type RetainAction,
  type RetainWorld,
} from '../../domain/steps/retain';
import { BackupError, ErrorCode, type ErrorCodeValue } from '../../domain/errors';
import { drive } from './drive';
import {
  allocatedBytes,
  durableUnlink,
  ensureDir,
  exists,
  setModeOwner,
  syncDir,
  transferHashed,
  writeFileAtomic,
} from './files';
import { hashFile } from './hashing';
import { buildManifest, manifestFileName, type ManifestEntry } from '../../domain/manifest';
import { backupImageMode, PRIVATE_FILE, runDirMode } from '../../domain/modes';
import { heartbeat, resolveRunChecked, step, type NodeDeps, type RunPaths } from './context';
import { disksDependingOnRetain } from './merge';
import type { RetainResult, VmRunInput } from './types';

interface RetainFile {
  from: string;
  to: string;
  disk: boolean;
  code: ErrorCodeValue;
}

function runFiles(paths: RunPaths): RetainFile[] {
  return [
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
}

/** The directory itself or its nearest ancestor that exists: where a new backup directory will live. */
async function nearestExisting(dir: string): Promise<string> {
  let d = dir;
  while (!(await exists(d)) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

async function backupSpace(at: string): Promise<BackupSpace> {
  try {
    const s = await fs.statfs(at);
    return { path: at, free: s.bavail * s.bsize };
  } catch (err) {
    return { path: at, free: undefined, error: (err as Error).message };
  }
}

async function allocatedOrZero(p: string): Promise<number> {
  return (await exists(p)) ? allocatedBytes(p) : 0;
}

async function observeRetain(input: VmRunInput, paths: RunPaths, files: RetainFile[]): Promise<RetainWorld> {
  const retainDirExists = await exists(paths.layout.retainDir);
  const ours = new Set(files.map((f) => path.basename(f.from)));
  const strangers = retainDirExists
    ? (await fs.readdir(paths.layout.retainDir)).filter(
        (f) => !f.startsWith('.') && !f.endsWith('.tmp') && !ours.has(f),
      )
    : [];
  // Where the backup directory is (or will be made): a move there is a copy unless it is
  // on the retain directory's filesystem, as transferFile decides.
  const backupAt = await nearestExisting(paths.layout.backupDir);
  const copies =
    retainDirExists && (await fs.stat(backupAt)).dev !== (await fs.stat(paths.layout.retainDir)).dev;
  const views = [];
  for (const f of files) {
    const atSource = await exists(f.from);
    const atDestination = await exists(f.to);
    const needsCopy = copies && atSource && !atDestination;
    views.push({
      name: path.basename(f.to),
      code: f.code,
      atSource,
      atDestination,
      copyBytes: needsCopy ? await allocatedBytes(f.from) : 0,
      partBytes: needsCopy ? await allocatedOrZero(`${f.to}.part`) : 0,
    });
  }
  return {
    vm: input.vm,
    retainDirExists,
    backupRoot: input.plan.backupRoot,
    backupRootExists: await exists(input.plan.backupRoot),
    backupDirExists: await exists(paths.layout.backupDir),
    backupSpace: await backupSpace(backupAt),
    blocking: retainDirExists ? await disksDependingOnRetain(paths) : [],
    files: views,
    strangers,
    manifestExists: await exists(manifestPath(input, paths)),
  };
}

const manifestPath = (input: VmRunInput, paths: RunPaths) =>
  path.join(paths.layout.backupDir, manifestFileName(input.vm, input.runDate));

/** Digests taken while moving, kept until the manifest is written (a dot file: not a stranger). */
const digestsPath = (paths: RunPaths) => path.join(paths.layout.retainDir, '.manifest-entries.json');

async function readDigests(paths: RunPaths): Promise<ManifestEntry[]> {
  try {
    return JSON.parse(await fs.readFile(digestsPath(paths), 'utf8')) as ManifestEntry[];
  } catch {
    return []; // none yet, or torn by a crash: the files are hashed where they are
  }
}

async function recordDigest(paths: RunPaths, entry: ManifestEntry): Promise<void> {
  const kept = (await readDigests(paths)).filter((e) => e.name !== entry.name);
  await writeFileAtomic(digestsPath(paths), JSON.stringify([...kept, entry]), PRIVATE_FILE);
}

/**
 * The manifest from the digests taken while moving. A file moved by an attempt that died
 * before recording its digest is hashed in the backup directory: read a second time only then.
 */
async function writeManifest(input: VmRunInput, paths: RunPaths, files: RetainFile[]): Promise<void> {
  const recorded = (await exists(paths.layout.retainDir)) ? await readDigests(paths) : [];
  const entries: ManifestEntry[] = [];
  for (const f of files) {
    const name = path.basename(f.to);
    const size = (await fs.stat(f.to)).size;
    const known = recorded.find((e) => e.name === name && e.size === size);
    entries.push(
      known ?? {
        name,
        ...(await hashFile(f.to, (bytes) =>
          heartbeat({ step: 'retain', action: 'hash', file: name, bytes, total: size }),
        )),
      },
    );
  }
  const manifest = buildManifest(input.vm, input.runDate, entries, new Date());
  await writeFileAtomic(manifestPath(input, paths), `${JSON.stringify(manifest, null, 2)}\n`, PRIVATE_FILE);
}

async function retainAct(
  input: VmRunInput,
  paths: RunPaths,
  files: RetainFile[],
  a: RetainAction,
): Promise<void> {
  const plan = input.plan;
  const file = files.find((f) => path.basename(f.to) === a.target);
  switch (a.kind) {
    case 'create-backup-dir':
      return step(ErrorCode.cannotCreateDirectory, `create ${paths.layout.backupDir}`, () =>
        ensureDir(paths.layout.backupDir, {
          mode: runDirMode(plan.directoryPermission, 'backup'),
          user: plan.directoryOwner,
          group: plan.directoryGroup,
        }),
      );
    case 'move-file': {
      const f = file!;
      const total = (await fs.stat(f.from)).size;
      const progress = (bytes: number) =>
        heartbeat({ step: 'retain', action: a.kind, file: a.target, bytes, total });
      // Mode and owner are set before the file appears under its final name.
      const prepare = async (p: string) => {
        if (!f.disk) return setModeOwner(p, { mode: PRIVATE_FILE });
        await step(ErrorCode.imageOwner, `owner of ${f.to}`, () =>
          setModeOwner(p, { user: plan.imageOwner, group: plan.imageGroup }),
        );
        await step(ErrorCode.imagePermission, `permission of ${f.to}`, () =>
          setModeOwner(p, { mode: backupImageMode(plan.imagePermission) }),
        );
      };
      return step(f.code, `retain ${path.basename(f.from)}`, async () => {
        try {
          const digest = await transferHashed(f.from, f.to, { onBytes: progress, prepare });
          await recordDigest(paths, { name: path.basename(f.to), ...digest });
        } catch (err) {
          // The room was checked before; something else filled the disk since. The copy left
          // no `.part`, the file is still in the retain directory: retrying once there is room
          // goes on from here.
          const m = (err as NodeJS.ErrnoException).message;
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC' || /No space left on device/.test(m))
            throw new BackupError(
              ErrorCode.notEnoughDiskSpace,
              `the backup root ${plan.backupRoot} ran out of disk space while copying ${path.basename(f.from)}: ${m}`,
            );
          throw err;
        }
      });
    }
    case 'remove-source':
      return step(ErrorCode.cannotRemoveFile, `remove ${file!.from}`, () => durableUnlink(file!.from));
    case 'write-manifest':
      return step(ErrorCode.copyFileToBackupFailed, `write the manifest of ${input.vm}`, () =>
        writeManifest(input, paths, files),
      );
    case 'clear-retain-dir':
      await fs.rm(paths.layout.retainDir, { recursive: true, force: true });
      await syncDir(path.dirname(paths.layout.retainDir));
      return;
  }
}

/**
 * retain: move every file of the run from the retain directory into
 * `<backup root>/<pool path>/<vm>/<date>/` (a rename on one filesystem, a sparse-aware
 * copy otherwise). Refuses while a live image still depends on a retained one.
 */
export async function retain(deps: NodeDeps, input: VmRunInput): Promise<RetainResult> {
  const paths = await resolveRunChecked(deps, input);
  const files = runFiles(paths);
  await drive({
    step: 'retain',
    vm: input.vm,
    observe: () => observeRetain(input, paths, files),
    decide: decideRetain,
    act: (a) => retainAct(input, paths, files, a),
  });
  const written = [...files.map((f) => f.to), manifestPath(input, paths)];
  let bytes = 0;
  for (const f of written) bytes += await allocatedBytes(f);
  return { backupDir: paths.layout.backupDir, files: written.map((f) => path.basename(f)), bytes };
}
