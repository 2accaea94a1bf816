/**
 * Admission of `virsh save`s on one node: pure decisions, so that they can be table-tested.
 * The node worker (`activities/node/save-slots.ts`) feeds them statfs and its reservations.
 */

const MiB = 1024 * 1024;

/** Bytes a state file may need: the guest's RAM plus device state (as inspectForSnapshot checks). */
export function stateFileBytes(memoryBytes: number): number {
  return Math.ceil(memoryBytes * 1.1) + 16 * MiB;
}

/** A save in progress on a filesystem: what it reserved, and what its file already occupies. */
export interface SaveInProgress {
  reserved: number;
  written: number;
}

export interface SaveRequest {
  /** statfs of the save directory's filesystem: bytes available to us, and its whole size. */
  free: number;
  total: number;
  needed: number;
  /** Saves in progress in this worker on the same filesystem. */
  onFilesystem: SaveInProgress[];
  /** Saves in progress in this worker on any filesystem, and the node's cap on them. */
  running: number;
  maxParallel: number;
}

export type SaveAdmission =
  | { kind: 'admit' }
  | { kind: 'wait'; for: 'room' | 'cap'; why: string; freeBytes: number }
  | { kind: 'never'; why: string };

/**
 * Whether a save may start now. What a running save still has to write is taken from the
 * free space (its file's blocks already are), so that saves admitted together always fit;
 * a state that needs more than the whole filesystem can never fit and fails at once.
 */
export function admitSave(r: SaveRequest): SaveAdmission {
  if (r.needed > r.total)
    return {
      kind: 'never',
      why: `the state file needs up to ${mib(r.needed)} MiB, the filesystem holds ${mib(r.total)} MiB in all`,
    };
  const pending = r.onFilesystem.reduce((sum, s) => sum + Math.max(0, s.reserved - s.written), 0);
  const freeBytes = Math.max(0, r.free - pending);
  if (r.running >= r.maxParallel)
    return {
      kind: 'wait',
      for: 'cap',
      why: `${r.running === 1 ? '1 save runs' : `${r.running} saves run`} on this node, at most ${r.maxParallel} at once`,
      freeBytes,
    };
  if (freeBytes < r.needed)
    return {
      kind: 'wait',
      for: 'room',
      why: `${mib(r.needed)} MiB needed, ${mib(freeBytes)} free`,
      freeBytes,
    };
  return { kind: 'admit' };
}

const mib = (bytes: number) => Math.round(bytes / MiB);

/** When one VM's save began and its downtime window ended (epoch ms). */
export interface SaveSpan {
  vm: string;
  startedAt: number;
  endedAt: number;
}

export interface SaveGrouping {
  /** Saves that ran together (every one of a group overlapped all others), by start. */
  groups: string[][];
  /** The most saves that were ever in progress at one instant. */
  maxConcurrent: number;
}

/**
 * How a multi-VM run's saves were grouped: a new group begins with the first save that
 * started after one of the current group had ended (the limits held it back).
 */
export function groupSaves(spans: SaveSpan[]): SaveGrouping {
  const sorted = [...spans].sort((a, b) => a.startedAt - b.startedAt || a.vm.localeCompare(b.vm));
  const groups: string[][] = [];
  let current: string[] = [];
  let firstEnd = Infinity;
  for (const s of sorted) {
    if (current.length > 0 && s.startedAt >= firstEnd) {
      groups.push(current);
      current = [];
      firstEnd = Infinity;
    }
    current.push(s.vm);
    firstEnd = Math.min(firstEnd, s.endedAt);
  }
  if (current.length > 0) groups.push(current);
  // Sweep: an end at the same instant as a start frees its room first.
  const events = sorted.flatMap((s) => [
    { t: s.startedAt, d: 1 },
    { t: s.endedAt, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let maxConcurrent = 0;
  for (const e of events) {
    now += e.d;
    maxConcurrent = Math.max(maxConcurrent, now);
  }
  return { groups, maxConcurrent };
}
