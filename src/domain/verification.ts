import { fileDisksOf } from './domain-xml';
import { SAVE_HEADER_BYTES, SAVE_IMAGE_MAGIC } from './save-image';
import { XmlSyntaxError } from './xml/entities';
import { parseDomainXml } from './xml/parse';

/**
 * Verification of a kept backup: what was checked, what is wrong, and the mark that
 * operators, the nightly retention and the scheduled verification read on the run leaf.
 */

/**
 * `passed`: every file matches its manifest and every structural check holds.
 * `failed`: something is wrong, named in the problems.
 * `no-manifest`: a backup from before manifests; the structural checks held, but its
 * contents cannot be proven.
 */
export type VerifyOutcome = 'passed' | 'failed' | 'no-manifest';

export interface VerifyProblem {
  /** The file's name in the backup directory (or the directory itself). */
  file: string;
  problem: string;
}

export interface VerifyReport {
  vm: string;
  runDate: string;
  backupDir: string;
  outcome: VerifyOutcome;
  /** When the verification ended (ISO 8601). */
  checkedAt: string;
  durationMs: number;
  /** Bytes read to hash the files: their size once, when nothing is wrong. */
  bytesRead: number;
  /** Sum of the sizes the manifest lists. */
  bytesExpected: number;
  files: number;
  problems: VerifyProblem[];
}

export const verifyFileName = (vm: string, runDate: string): string => `${vm}.verify.${runDate}`;

export function verifyOutcome(manifestPresent: boolean, problems: readonly VerifyProblem[]): VerifyOutcome {
  if (problems.length) return 'failed';
  return manifestPresent ? 'passed' : 'no-manifest';
}

/** The mark on the run leaf: one `description` value, next to the backup directory's. */
export const VERIFICATION_DESCRIPTION = 'vmbackup verification: ';

export interface VerificationMark {
  outcome: VerifyOutcome;
  checkedAt: string;
  /** The first problems, for the portal and `ldapsearch` readers. */
  summary?: string | undefined;
}

export function markOf(report: VerifyReport): VerificationMark {
  const summary = report.problems
    .slice(0, 3)
    .map((p) => `${p.file}: ${p.problem}`)
    .join('; ');
  const more = report.problems.length > 3 ? ` (+${report.problems.length - 3} more)` : '';
  return {
    outcome: report.outcome,
    checkedAt: report.checkedAt,
    ...(summary && { summary: summary + more }),
  };
}

export function formatMark(m: VerificationMark): string {
  return `${VERIFICATION_DESCRIPTION}${m.outcome} ${m.checkedAt}${m.summary ? ` ${m.summary}` : ''}`;
}

export function parseMark(value: string): VerificationMark | undefined {
  if (!value.startsWith(VERIFICATION_DESCRIPTION)) return undefined;
  const [outcome, checkedAt, ...rest] = value.slice(VERIFICATION_DESCRIPTION.length).split(' ');
  if (outcome !== 'passed' && outcome !== 'failed' && outcome !== 'no-manifest') return undefined;
  if (!checkedAt || Number.isNaN(Date.parse(checkedAt))) return undefined;
  return { outcome, checkedAt, ...(rest.length && { summary: rest.join(' ') }) };
}

const DAY_MS = 24 * 3600 * 1000;

/** A backup is due when it was never verified, or not within the window. */
export function verificationDue(mark: VerificationMark | undefined, now: Date, windowDays: number): boolean {
  if (!mark) return true;
  return now.getTime() - Date.parse(mark.checkedAt) >= windowDays * DAY_MS;
}

// ---- the structural checks, on what the node read ----

export interface DescribedDisk {
  target: string;
  source: string;
}

/** Name and file-backed disks of a libvirt domain XML, or why it does not parse as one. */
export function describeDomainXml(xml: string): { name: string; disks: DescribedDisk[] } | { error: string } {
  let domain;
  try {
    domain = parseDomainXml(xml).root;
  } catch (e) {
    if (!(e instanceof XmlSyntaxError)) throw e;
    return { error: e.problem === 'root' ? 'is not a <domain>' : e.detail };
  }
  const name = domain.first('name')?.text().trim();
  if (!name) return { error: 'has no <name>' };
  const disks = [...fileDisksOf(domain)].map(([target, source]) => ({ target, source }));
  return { name, disks: disks.sort((a, b) => a.target.localeCompare(b.target)) };
}

const SAVE_PARTIAL = 'LibvirtQemudPart';

/**
 * What the state file's first bytes say: a complete libvirt save image (and how long its
 * header with the embedded domain XML is), the placeholder of a shut-down VM, or neither.
 */
export function stateFileKind(
  head: Buffer,
  placeholder: string,
): { kind: 'save-image'; dataBytes: number } | { kind: 'placeholder' } | { kind: 'bad'; problem: string } {
  if (
    head.subarray(0, placeholder.length).toString('utf8') === placeholder &&
    head.length === placeholder.length
  )
    return { kind: 'placeholder' };
  const magic = head.subarray(0, 16).toString('latin1');
  if (magic === SAVE_PARTIAL)
    return { kind: 'bad', problem: 'a libvirt save image that was never completed' };
  if (magic !== SAVE_IMAGE_MAGIC || head.length < SAVE_HEADER_BYTES)
    return { kind: 'bad', problem: 'neither a libvirt save image nor the placeholder of a shut-down VM' };
  const version = head.readUInt32LE(16);
  const dataBytes = head.readUInt32LE(20);
  if (version < 2 || version > 3)
    return { kind: 'bad', problem: `libvirt save image of unknown version ${version}` };
  if (dataBytes === 0 || dataBytes > 16 * 1024 * 1024)
    return { kind: 'bad', problem: `libvirt save image with an implausible header length ${dataBytes}` };
  return { kind: 'save-image', dataBytes };
}

/** The domain XML a save image embeds after its header (NUL-terminated). */
export function embeddedXml(data: Buffer): string {
  const end = data.indexOf(0);
  return data.subarray(0, end < 0 ? data.length : end).toString('utf8');
}

/** Differences between the disks two descriptions of the VM name. */
export function diskDifferences(
  xmlDisks: readonly DescribedDisk[],
  ldifDisks: readonly DescribedDisk[],
): string[] {
  const out: string[] = [];
  const byTarget = new Map(ldifDisks.map((d) => [d.target, d.source]));
  for (const d of xmlDisks) {
    const other = byTarget.get(d.target);
    if (other === undefined) out.push(`disk ${d.target} is in the XML but not in the LDIF`);
    else if (other !== d.source)
      out.push(`disk ${d.target} is ${d.source} in the XML but ${other} in the LDIF`);
    byTarget.delete(d.target);
  }
  for (const target of byTarget.keys()) out.push(`disk ${target} is in the LDIF but not in the XML`);
  return out;
}
