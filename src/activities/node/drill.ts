import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackupError, ErrorCode } from '../../domain/errors';
import { cloneDomainXml, interfaceCount } from '../../domain/clone-xml';
import { fileDisks } from '../../domain/domain-xml';
import { manifestFileName, parseManifest, type Manifest } from '../../domain/manifest';
import { assertRunDate, assertVmName } from '../../domain/names';
import { rewriteSavedXml, savedXml } from './save-image-file';
import { decideDrill, type DrillAction, type DrillWorld } from '../../domain/steps/drill';
import { check, sameContent } from '../../hypervisor/qemu-img';
import { CommandError } from '../../hypervisor/run';
import {
  createTransient,
  defineNetwork,
  domainUuid,
  networkState,
  startNetwork,
} from '../../hypervisor/virsh-scratch';
import { realBackupDir, type BackupRef } from './backup-dir';
import { confineReal } from './confine-real';
import { heartbeat, type NodeDeps } from './context';
import { confine } from '../../domain/paths';
import { drive } from './drive';
import {
  durableHashedCopy,
  durableUnlink,
  ensureDir,
  exists,
  readJsonIfThere,
  syncDir,
  writeFileAtomic,
} from './files';
import { observeDomain } from './observe';
import { readHead } from './read-head';
import { PLACEHOLDER_STATE } from './snapshot';

/** The isolated libvirt network (no forward, no address) a restored scratch VM's interfaces join. */
export const DRILL_NETWORK = 'vmbackup-drill';

export interface DrillInput extends BackupRef {
  /** Names this drill (the workflow's run): its journal and result carry it. */
  drillId: string;
}

export interface DrillReport {
  format: 'vmbackup-drill/1';
  drillId: string;
  vm: string;
  runDate: string;
  scratch: string;
  outcome: 'passed' | 'failed';
  /** From the saved state (the VM ran at the backup) or booted (it was off). */
  from: 'state' | 'boot';
  durationMs: number;
  startedAt: string;
  /** What failed, one line each; empty when passed. */
  problems: string[];
  /** The result file in the backup directory. */
  file?: string | undefined;
}

interface DrillJournal {
  drillId: string;
  uuid: string;
  startedAt: number;
  compared?: boolean;
  started?: boolean;
  checked?: boolean;
  problems: string[];
}

const JOURNAL = '.vmbackup-drill.json';
const RESULT_FORMAT = 'vmbackup-drill/1';

/** `<vm>-drill-<MMDDhhmm of the backup>`: a valid VM name, the same on every re-run. */
export function scratchName(vm: string, runDate: string): string {
  return `${vm.slice(0, 48)}-drill-${runDate.slice(4, 8)}${runDate.slice(9, 13)}`;
}

export const drillResultName = (vm: string, runDate: string): string => `${vm}.drill.${runDate}`;

interface DrillPlaces {
  scratch: string;
  dir: string;
  journal: string;
  backupDir: string;
  backupXml: string;
  backupState: string;
  stateCopy: string;
  xmlCopy: string;
  result: string;
  disks: Array<{ target: string; backup: string; copy: string }>;
}

async function places(deps: NodeDeps, input: DrillInput): Promise<DrillPlaces> {
  assertVmName(input.vm);
  assertRunDate(input.runDate);
  const { vm, runDate } = input;
  const refuse = (why: string) =>
    new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `cannot drill backup ${runDate} of ${vm}: ${why}`,
    );
  const backupDir = await realBackupDir(deps, input, refuse);
  if (backupDir === undefined)
    throw new BackupError(ErrorCode.missingFiles, `backup ${runDate} of ${vm} not found on this node`);
  const roots = deps.config.storageRoots;
  const retainRoot = confine(input.plan.retainRoot, roots, 'sstBackupRetainDirectory');
  const dir = await confineReal(
    path.join(retainRoot, 'drills', vm, runDate),
    roots,
    'drill scratch directory',
    { noSymlink: true },
  );
  const backupXml = path.join(backupDir, `${vm}.xml.${runDate}`);
  if (!(await exists(backupXml))) throw new BackupError(ErrorCode.missingFiles, `${backupXml} is missing`);
  const disks = [...fileDisks(await fs.readFile(backupXml, 'utf8'))].map(([target, source]) => ({
    target,
    backup: path.join(backupDir, `${path.basename(source)}.${runDate}`),
    copy: path.join(dir, path.basename(source)),
  }));
  for (const d of disks) await confineReal(d.copy, roots, `drill copy of ${d.target}`, { noSymlink: true });
  return {
    scratch: scratchName(vm, runDate),
    dir,
    journal: path.join(dir, JOURNAL),
    backupDir,
    backupXml,
    backupState: path.join(backupDir, `${vm}.state.${runDate}`),
    stateCopy: path.join(dir, `${vm}.state.${runDate}`),
    xmlCopy: path.join(dir, 'scratch.xml'),
    result: path.join(backupDir, drillResultName(vm, runDate)),
    disks,
  };
}

const writeJournal = (p: DrillPlaces, j: DrillJournal) =>
  writeFileAtomic(p.journal, JSON.stringify(j) + '\n', 0o600);

async function backupManifest(p: DrillPlaces, vm: string, runDate: string): Promise<Manifest | undefined> {
  const file = path.join(p.backupDir, manifestFileName(vm, runDate));
  if (!(await exists(file))) return undefined;
  return parseManifest(await fs.readFile(file, 'utf8'), vm, runDate);
}

/** The state's saved XML as the scratch domain's: its identity, its copies, no way onto a real network. */
function scratchXml(xml: string, p: DrillPlaces, uuid: string, fromState: boolean): string {
  return cloneDomainXml(xml, {
    name: p.scratch,
    uuid,
    disks: new Map(p.disks.map((d) => [d.target, d.copy])),
    // The saved device state holds the interfaces: they stay, on a network that leads nowhere.
    interfaces: fromState && interfaceCount(xml) > 0 ? { network: DRILL_NETWORK } : 'remove',
  });
}

/** The copied state's header XML becomes the scratch domain's. */
const rewriteStateCopy = (file: string, p: DrillPlaces, uuid: string) =>
  rewriteSavedXml(file, (xml) => scratchXml(xml, p, uuid, true));

const NETWORK_XML = `<network><name>${DRILL_NETWORK}</name><bridge name='vmbdrill0' stp='on' delay='0'/></network>\n`;

async function observeDrill(
  deps: NodeDeps,
  input: DrillInput,
  p: DrillPlaces,
  withState: boolean,
): Promise<DrillWorld & { journalData?: DrillJournal | undefined }> {
  const j = await readJsonIfThere<DrillJournal>(p.journal);
  const result = await readJsonIfThere<{ drillId?: string }>(p.result);
  const domain = await observeDomain(deps.virsh, p.scratch);
  const uuid = domain.state === 'absent' ? undefined : await domainUuid(deps.virsh.uri, p.scratch);
  const disks = [];
  for (const d of p.disks) disks.push({ target: d.target, copied: await exists(d.copy) });
  const needsNetwork =
    withState && (await exists(p.stateCopy)) ? interfaceCount(await savedXml(p.stateCopy)) > 0 : false;
  return {
    vm: input.vm,
    scratch: p.scratch,
    journal: !j ? 'none' : j.drillId === input.drillId ? 'ours' : 'stale',
    journalData: j,
    scratchDirExists: await exists(p.dir),
    domain,
    domainOurs: !!j && uuid === j.uuid,
    disks,
    withState,
    stateCopied: await exists(p.stateCopy),
    compared: !!j?.compared,
    failed: (j?.problems.length ?? 0) > 0,
    needsNetwork,
    networkReady: needsNetwork && (await networkState(deps.virsh.uri, DRILL_NETWORK)) === 'active',
    started: !!j?.started,
    checked: !!j?.checked,
    resultWritten: result?.drillId === input.drillId,
  };
}

/** A business failure of the drill's subject (a bad image, a VM that does not start) is a finding, not an error. */
async function finding(p: DrillPlaces, j: DrillJournal, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof BackupError) && !(err instanceof CommandError)) throw err;
    await writeJournal(p, { ...j, problems: [...j.problems, (err as Error).message] });
  }
}

async function drillAct(
  deps: NodeDeps,
  input: DrillInput,
  p: DrillPlaces,
  manifest: Manifest | undefined,
  a: DrillAction,
  w: DrillWorld & { journalData?: DrillJournal | undefined },
): Promise<void> {
  const j = w.journalData!;
  const uri = deps.virsh.uri;
  const fromManifest = (file: string) => {
    const listed = manifest?.files.find((e) => e.name === path.basename(file));
    return (digest: { size: number; sha256: string }) => {
      if (listed && (digest.size !== listed.size || digest.sha256 !== listed.sha256))
        throw new BackupError(
          ErrorCode.corruptImage,
          `${path.basename(file)} differs from the backup's manifest (size ${digest.size}, SHA-256 ${digest.sha256}; recorded ${listed.size}, ${listed.sha256})`,
        );
    };
  };
  switch (a.kind) {
    case 'begin':
      // Leftovers of a drill removed halfway go first: the scratch directory is this drill's alone.
      await fs.rm(p.dir, { recursive: true, force: true });
      // Owner-only but searchable: QEMU (libvirt-qemu) opens the copies by path.
      await ensureDir(p.dir, { mode: 0o711 });
      return writeJournal(p, {
        drillId: input.drillId,
        uuid: randomUUID(),
        startedAt: Date.now(),
        problems: [],
      });
    case 'copy-disk': {
      const d = p.disks.find((x) => x.target === a.target)!;
      return finding(p, j, async () => {
        await durableHashedCopy(d.backup, d.copy, {
          onBytes: (bytes) => heartbeat({ step: 'drill', action: 'copy', file: d.target, bytes }),
          check: fromManifest(d.backup),
        });
      });
    }
    case 'copy-state':
      return finding(p, j, async () => {
        await durableHashedCopy(p.backupState, p.stateCopy, {
          onBytes: (bytes) => heartbeat({ step: 'drill', action: 'copy', file: 'state', bytes }),
          check: fromManifest(p.backupState),
          prepare: (part) => rewriteStateCopy(part, p, j.uuid),
        });
      });
    case 'compare-disks': {
      // Before the scratch VM runs and writes to them: the copies must be the backup's images.
      const problems: string[] = [];
      for (const d of p.disks) {
        heartbeat({ step: 'drill', action: 'compare', file: d.target });
        const checked = await check(d.copy);
        if (!checked.ok) problems.push(`disk ${d.target}: qemu-img check failed: ${checked.output}`);
        else if (!(await sameContent(d.backup, d.copy)))
          problems.push(`disk ${d.target}: the copy differs from the backup's image`);
      }
      return writeJournal(p, { ...j, compared: true, problems: [...j.problems, ...problems] });
    }
    case 'ensure-network': {
      const state = await networkState(uri, DRILL_NETWORK);
      if (state === 'absent') {
        const file = path.join(p.dir, 'network.xml');
        await writeFileAtomic(file, NETWORK_XML, 0o600);
        await defineNetwork(uri, file).catch(async (err: unknown) => {
          // Another drill defined it meanwhile.
          if ((await networkState(uri, DRILL_NETWORK)) === 'absent') throw err;
        });
      }
      if ((await networkState(uri, DRILL_NETWORK)) !== 'active')
        await startNetwork(uri, DRILL_NETWORK).catch(async (err: unknown) => {
          if ((await networkState(uri, DRILL_NETWORK)) !== 'active') throw err;
        });
      return;
    }
    case 'start-scratch':
      await finding(p, j, async () => {
        if (w.withState) await deps.virsh.restore(p.stateCopy, await writeScratchXml(p, j, true));
        else {
          await writeScratchXml(p, j, false);
          await createTransient(uri, p.xmlCopy);
        }
      });
      return writeJournal(p, { ...(await readJsonIfThere<DrillJournal>(p.journal))!, started: true });
    case 'check-running': {
      // Running twice, a second apart: a guest that dies at once (a bad state) shows here.
      let problem: string | undefined;
      for (let i = 0; i < 2 && !problem; i++) {
        const state = await deps.virsh.state(p.scratch);
        if (state !== 'running') problem = `the scratch VM ${p.scratch} is ${state ?? 'gone'}, not running`;
        else if (i === 0) await sleep(1000);
      }
      return writeJournal(p, {
        ...j,
        started: true,
        checked: true,
        problems: problem ? [...j.problems, problem] : j.problems,
      });
    }
    case 'destroy-scratch': {
      await deps.virsh.destroy(p.scratch).catch(async (err: unknown) => {
        if ((await deps.virsh.state(p.scratch)) === 'running') throw err;
      });
      // A scratch domain is transient; one left defined (by hand) would keep its name.
      if ((await deps.virsh.state(p.scratch)) !== undefined) await deps.virsh.undefine(p.scratch);
      return;
    }
    case 'write-result': {
      const report: DrillReport = {
        format: RESULT_FORMAT,
        drillId: input.drillId,
        vm: input.vm,
        runDate: input.runDate,
        scratch: p.scratch,
        outcome: j.problems.length ? 'failed' : 'passed',
        from: w.withState ? 'state' : 'boot',
        durationMs: Date.now() - j.startedAt,
        startedAt: new Date(j.startedAt).toISOString(),
        problems: j.problems,
      };
      return writeFileAtomic(p.result, JSON.stringify(report, null, 2) + '\n', 0o600);
    }
    case 'remove-scratch':
      // The journal first: a directory without one is never taken for a drill in progress.
      await durableUnlink(p.journal);
      await fs.rm(p.dir, { recursive: true, force: true });
      await syncDir(path.dirname(p.dir));
      // `drills/<vm>` goes too once no drill of another backup uses it.
      await fs.rmdir(path.dirname(p.dir)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'ENOENT') throw err;
      });
      return;
  }
}

/** The scratch domain's XML, from the copied state's header (already rewritten) or the backed-up XML. */
async function writeScratchXml(p: DrillPlaces, j: DrillJournal, fromState: boolean): Promise<string> {
  const xml = fromState
    ? await savedXml(p.stateCopy)
    : scratchXml(await fs.readFile(p.backupXml, 'utf8'), p, j.uuid, false);
  await writeFileAtomic(p.xmlCopy, xml, 0o600);
  return p.xmlCopy;
}

/**
 * drill: brings the backup up as a scratch VM on this node — copies of its images and
 * state in a scratch directory of its own, a new name and UUID, no way onto a real network
 * — compares the copies with the backup before it runs, checks it runs, destroys it and
 * removes everything it made; the result goes into the backup directory. The live VM, its
 * files and its directory entry are never touched. A re-run after a kill finishes or
 * cleans up what the world and the drill's journal show.
 */
export async function drillBackup(deps: NodeDeps, input: DrillInput): Promise<DrillReport> {
  if (typeof input.drillId !== 'string' || !/^[\w-]{1,100}$/.test(input.drillId))
    throw new BackupError(ErrorCode.unsupportedConfigurationValue, 'a drill needs its id');
  const p = await places(deps, input);
  if (!(await exists(p.backupState)))
    throw new BackupError(ErrorCode.missingFiles, `${p.backupState} is missing`);
  const head = (await readHead(p.backupState, PLACEHOLDER_STATE.length)).toString('utf8');
  const withState = head !== PLACEHOLDER_STATE;
  const manifest = await backupManifest(p, input.vm, input.runDate);
  await drive({
    step: 'drill',
    vm: input.vm,
    observe: () => observeDrill(deps, input, p, withState),
    decide: decideDrill,
    act: (a, w) => drillAct(deps, input, p, manifest, a, w),
  });
  const report = (await readJsonIfThere<DrillReport>(p.result))!;
  return { ...report, file: p.result };
}
