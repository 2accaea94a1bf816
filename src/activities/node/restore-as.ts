import { randomBytes, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { cloneDomainXml, interfaceMacs } from '../../domain/clone-xml';
import { fileDisks } from '../../domain/domain-xml';
import { BackupError, ErrorCode } from '../../domain/errors';
import { manifestFileName, parseManifest, type Manifest } from '../../domain/manifest';
import { PRIVATE_DIR, PRIVATE_FILE } from '../../domain/modes';
import { assertRunDate, assertVmName } from '../../domain/names';
import { confine } from '../../domain/paths';
import { rewriteSavedXml, savedXml } from './save-image-file';
import { decideRestoreAs, type RestoreAsAction, type RestoreAsWorld } from '../../domain/steps/restore-as';
import { domainUuid } from '../../hypervisor/virsh-scratch';
import { realBackupDir, type BackupRef } from './backup-dir';
import { confineReal } from './confine-real';
import { heartbeat, step, type NodeDeps } from './context';
import { drive } from './drive';
import {
  durableHashedCopy,
  durableUnlink,
  ensureDir,
  exists,
  setModeOwner,
  syncDir,
  writeFileAtomic,
  readJsonIfThere,
} from './files';
import { observeDomain } from './observe';
import { readHead } from './read-head';
import { PLACEHOLDER_STATE } from './snapshot';

export interface RestoreAsInput extends BackupRef {
  /** The new VM's name. */
  as: string;
  /** Start a VM that was off at the backup (the plan's force start). */
  startAfter: boolean;
}

export interface RestoreAsResult {
  vm: string;
  as: string;
  runDate: string;
  uuid: string;
  state: string;
  withState: boolean;
  disks: Array<{ target: string; from: string; file: string }>;
  macs: Array<{ from: string; to: string }>;
  /** The backed-up directory subtree of the original, for the new VM's entries. */
  ldif: string;
}

interface Journal {
  uuid: string;
  /** New MAC of each interface, in order. */
  macs: string[];
  finished?: boolean;
}

const JOURNAL = '.vmbackup-restore-as.json';

/** A new disk's file name: the original's with the VM's name swapped, else prefixed with the new one. */
export function newImageName(original: string, vm: string, as: string): string {
  const base = path.basename(original);
  return base.startsWith(vm) ? `${as}${base.slice(vm.length)}` : `${as}-${base}`;
}

/** A locally administered MAC in QEMU's range. */
const newMac = () => `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

interface Places {
  backupDir: string;
  backupXml: string;
  backupState: string;
  backupLdif: string;
  work: string;
  journal: string;
  stateCopy: string;
  xmlFile: string;
  disks: Array<{ target: string; source: string; backup: string; file: string }>;
}

/** The work directory of a restore to a new name (its journal and state copy). */
export const restoreAsWorkDir = (deps: NodeDeps, input: RestoreAsInput): string =>
  path.join(
    confine(input.plan.retainRoot, deps.config.storageRoots, 'sstBackupRetainDirectory'),
    'restore-as',
    input.as,
  );

async function places(deps: NodeDeps, input: RestoreAsInput): Promise<Places> {
  assertVmName(input.vm);
  assertVmName(input.as);
  assertRunDate(input.runDate);
  const { vm, runDate, as } = input;
  if (as === vm)
    throw new BackupError(ErrorCode.unsupportedConfigurationValue, `the new name is ${vm}'s own`);
  const refuse = (why: string) =>
    new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `cannot restore backup ${runDate} of ${vm}: ${why}`,
    );
  const backupDir = await realBackupDir(deps, input, refuse);
  if (backupDir === undefined)
    throw new BackupError(ErrorCode.missingFiles, `backup ${runDate} of ${vm} not found on this node`);
  const work = await confineReal(
    restoreAsWorkDir(deps, input),
    deps.config.storageRoots,
    'restore work directory',
    {
      noSymlink: true,
    },
  );
  const backupXml = path.join(backupDir, `${vm}.xml.${runDate}`);
  if (!(await exists(backupXml))) throw new BackupError(ErrorCode.missingFiles, `${backupXml} is missing`);
  const disks = [];
  for (const [target, source] of fileDisks(await fs.readFile(backupXml, 'utf8'))) {
    const file = path.join(path.dirname(source), newImageName(source, vm, as));
    await confineReal(file, [deps.config.imagesRoot], `new image of ${target}`, { noSymlink: true });
    disks.push({ target, source, backup: path.join(backupDir, `${path.basename(source)}.${runDate}`), file });
  }
  return {
    backupDir,
    backupXml,
    backupState: path.join(backupDir, `${vm}.state.${runDate}`),
    backupLdif: path.join(backupDir, `${vm}.ldif.${runDate}`),
    work,
    journal: path.join(work, JOURNAL),
    stateCopy: path.join(work, `${as}.state`),
    xmlFile: path.join(work, `${as}.xml`),
    disks,
  };
}

function newXml(xml: string, input: RestoreAsInput, p: Places, j: Journal): string {
  return cloneDomainXml(xml, {
    name: input.as,
    uuid: j.uuid,
    disks: new Map(p.disks.map((d) => [d.target, d.file])),
    interfaces: 'keep',
    macs: j.macs,
  });
}

/** The copied state's header XML becomes the new VM's. */
const rewriteState = (file: string, input: RestoreAsInput, p: Places, j: Journal) =>
  rewriteSavedXml(file, (xml) => newXml(xml, input, p, j));

async function observe(
  deps: NodeDeps,
  input: RestoreAsInput,
  p: Places,
  withState: boolean,
): Promise<RestoreAsWorld & { j?: Journal | undefined }> {
  const j = await readJsonIfThere<Journal>(p.journal);
  const domain = await observeDomain(deps.virsh, input.as);
  const uuid = domain.state === 'absent' ? undefined : await domainUuid(deps.virsh.uri, input.as);
  const images = [];
  for (const d of p.disks) images.push({ target: d.target, exists: await exists(d.file) });
  return {
    vm: input.vm,
    as: input.as,
    j,
    journal: !!j,
    finished: !!j?.finished,
    domain,
    domainOurs: !!j && uuid === j.uuid,
    images,
    withState,
    stateCopied: await exists(p.stateCopy),
    startAfter: input.startAfter,
  };
}

async function act(
  deps: NodeDeps,
  input: RestoreAsInput,
  p: Places,
  manifest: Manifest | undefined,
  a: RestoreAsAction,
  w: RestoreAsWorld & { j?: Journal | undefined },
): Promise<void> {
  const checkAgainstManifest = (file: string) => {
    const listed = manifest?.files.find((e) => e.name === path.basename(file));
    return (digest: { size: number; sha256: string }) => {
      if (listed && (digest.size !== listed.size || digest.sha256 !== listed.sha256))
        throw new BackupError(
          ErrorCode.corruptImage,
          `backup file ${file} differs from the backup's manifest`,
        );
    };
  };
  switch (a.kind) {
    case 'begin': {
      await ensureDir(p.work, { mode: PRIVATE_DIR });
      const macs = interfaceMacs(await fs.readFile(p.backupXml, 'utf8')).map(() => newMac());
      return writeFileAtomic(p.journal, JSON.stringify({ uuid: randomUUID(), macs }) + '\n', 0o600);
    }
    case 'copy-disk': {
      const d = p.disks.find((x) => x.target === a.target)!;
      await step(ErrorCode.copyFileToBackupFailed, `copy ${path.basename(d.backup)}`, () =>
        durableHashedCopy(d.backup, d.file, {
          onBytes: (bytes) => heartbeat({ step: 'restore-as', action: 'copy', file: d.target, bytes }),
          check: checkAgainstManifest(d.backup),
          prepare: (part) => setModeOwner(part, { mode: PRIVATE_FILE }),
        }),
      );
      return;
    }
    case 'copy-state':
      await step(ErrorCode.copyFileToBackupFailed, `copy the state of ${input.vm}`, () =>
        durableHashedCopy(p.backupState, p.stateCopy, {
          check: checkAgainstManifest(p.backupState),
          prepare: (part) => rewriteState(part, input, p, w.j!),
        }),
      );
      return;
    case 'define':
      await writeFileAtomic(p.xmlFile, newXml(await fs.readFile(p.backupXml, 'utf8'), input, p, w.j!), 0o600);
      return step(ErrorCode.cannotDefine, `define ${input.as}`, () => deps.virsh.define(p.xmlFile));
    case 'restore-from-state':
      return step(
        ErrorCode.cannotRestoreMachine,
        `restore ${input.as} from the state of ${input.vm}`,
        async () => {
          const xml = await savedXml(p.stateCopy);
          await writeFileAtomic(p.xmlFile, xml, 0o600);
          await deps.virsh.restore(p.stateCopy, p.xmlFile);
        },
      );
    case 'start-vm':
      return step(ErrorCode.cannotStart, `start ${input.as}`, () => deps.virsh.start(input.as));
    case 'finish':
      await durableUnlink(p.stateCopy);
      await durableUnlink(p.xmlFile);
      return writeFileAtomic(p.journal, JSON.stringify({ ...w.j!, finished: true }) + '\n', 0o600);
  }
}

/**
 * restore `--as`: defines a new VM from a backup — its images copied next to the
 * original's under the new name, a new UUID and MAC addresses — and brings it up from the
 * backup's saved state (the save image's header rewritten on a copy) or leaves it off as
 * the original was. The original VM, its files and its entry are never touched; a name
 * that is taken (domain or image) is refused before anything changes.
 */
export async function restoreAs(deps: NodeDeps, input: RestoreAsInput): Promise<RestoreAsResult> {
  const p = await places(deps, input);
  if (!(await exists(p.backupState)))
    throw new BackupError(ErrorCode.missingFiles, `${p.backupState} is missing`);
  const head = (await readHead(p.backupState, PLACEHOLDER_STATE.length)).toString('utf8');
  const withState = head !== PLACEHOLDER_STATE;
  // What cannot be cloned (a UEFI variable store, a non-file disk) is refused before any copy.
  newXml(await fs.readFile(p.backupXml, 'utf8'), input, p, {
    uuid: '00000000-0000-0000-0000-000000000000',
    macs: [],
  });
  const manifestFile = path.join(p.backupDir, manifestFileName(input.vm, input.runDate));
  const manifest = (await exists(manifestFile))
    ? parseManifest(await fs.readFile(manifestFile, 'utf8'), input.vm, input.runDate)
    : undefined;
  await drive({
    step: 'restore-as',
    vm: input.vm,
    observe: () => observe(deps, input, p, withState),
    decide: decideRestoreAs,
    act: (a, w) => act(deps, input, p, manifest, a, w),
  });
  const j = (await readJsonIfThere<Journal>(p.journal))!;
  const oldMacs = interfaceMacs(await fs.readFile(p.backupXml, 'utf8'));
  return {
    vm: input.vm,
    as: input.as,
    runDate: input.runDate,
    uuid: j.uuid,
    state: (await deps.virsh.state(input.as)) ?? 'undefined',
    withState,
    disks: p.disks.map((d) => ({ target: d.target, from: d.source, file: d.file })),
    macs: oldMacs.flatMap((m, i) => (m && j.macs[i] ? [{ from: m, to: j.macs[i] }] : [])),
    ldif: await fs.readFile(p.backupLdif, 'utf8'),
  };
}

/** Once the new VM's entry is written: its work directory goes. */
export async function forgetRestoreAs(deps: NodeDeps, input: RestoreAsInput): Promise<void> {
  assertVmName(input.as);
  const work = await confineReal(
    restoreAsWorkDir(deps, input),
    deps.config.storageRoots,
    'restore work directory',
    {
      noSymlink: true,
    },
  );
  await fs.rm(work, { recursive: true, force: true });
  await syncDir(path.dirname(work)).catch(() => undefined);
}
