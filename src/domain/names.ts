import { BackupError, ErrorCode } from './errors';

// Names end up in DNs, file names, libvirt calls and workflow IDs: accept a conservative
// set so none of them needs quoting, and refuse everything else before anything is touched.
const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;
const RUN_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export function assertVmName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !VM_NAME.test(name) || name.includes('..')) {
    throw new BackupError(
      ErrorCode.cannotFindMachine,
      `invalid VM name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (at most 64, no '..')`,
    );
  }
}

export function assertNodeName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NODE_NAME.test(name) || name.includes('..')) {
    throw new BackupError(
      ErrorCode.unsupportedConfigurationValue,
      `invalid node name ${JSON.stringify(name)}: use letters, digits, '.' and '-'`,
    );
  }
}

/** Task queue of the node worker that runs a node's hypervisor activities. */
export function nodeTaskQueue(node: string): string {
  assertNodeName(node);
  return `node-${node}`;
}

/** `YYYYMMDDThhmmssZ` in UTC, the contract's name for a run leaf and its files. */
export function formatRunDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function assertRunDate(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !RUN_DATE.test(value) || formatRunDate(parseRunDate(value)) !== value) {
    throw new BackupError(ErrorCode.wrongStateInformation, `invalid run date ${JSON.stringify(value)}`);
  }
}

/** The instant a `YYYYMMDDThhmmssZ` run date names (Invalid Date when it names none). */
export function parseRunDate(value: string): Date {
  const m = RUN_DATE.exec(value);
  if (!m) return new Date(NaN);
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
}
