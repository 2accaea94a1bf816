import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './files';

/**
 * A small record next to the retained files. It holds only what the world cannot tell
 * afterwards (was the VM running before we saved it? did we start it for the merge?);
 * everything else a re-run reads from files and libvirt.
 */
export interface Journal {
  vm: string;
  runDate: string;
  phase: 'prepared' | 'snapshotted' | 'merged';
  wasRunning: boolean;
  wasPaused: boolean;
  /** Epoch ms when the snapshot began, and when the VM stopped running (save began). */
  startedAt: number;
  saveStartedAt?: number | undefined;
  /** Epoch ms when the VM ran again on its overlays. */
  restoredAt?: number | undefined;
  downtimeMs?: number | undefined;
  snapshotMs?: number | undefined;
  /** Set before the merge starts a stopped VM paused, so that only we stop it again. */
  mergeStartedVm?: boolean | undefined;
  /** How this run snapshots: `live` or `save` (journals from before live mode: `save`). */
  mode?: 'live' | 'save' | undefined;
  /** Why a run the plan wanted live runs in save mode. */
  fallback?: string | undefined;
  /** Live snapshots started, and when the last one started (epoch ms). */
  liveAttempts?: number | undefined;
  liveStartedAt?: number | undefined;
  /** libvirt's refusal of the live snapshot. */
  liveError?: string | undefined;
  /** Recorded before we suspend a VM to end its memory copy (libvirt resumes it). */
  pausedByUs?: boolean | undefined;
  /** A multi-VM run's group may pause this VM during its live snapshot (libvirt resumes it). */
  groupMember?: boolean | undefined;
  /** The pause of the live snapshot by libvirt's lifecycle events (epoch ms). */
  pausedAt?: number | undefined;
  resumedAt?: number | undefined;
  /** A rollback of the live snapshot has begun (a retried snapshot rolls back too). */
  rollingBack?: boolean | undefined;
  /** Shut-off VM: each image's `dev:ino:size:mtime` when its copy began. */
  frozen?: Record<string, string> | undefined;
}

export const JOURNAL_FILE = '.vmbackup-journal.json';

export async function readJournal(retainDir: string): Promise<Journal | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(retainDir, JOURNAL_FILE), 'utf8')) as Journal;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes of one journal in this process, one after the other (a group may pause a VM meanwhile). */
const queues = new Map<string, Promise<unknown>>();

function queued<T>(retainDir: string, op: () => Promise<T>): Promise<T> {
  const next = (queues.get(retainDir) ?? Promise.resolve()).then(op);
  const settled = next.catch(() => undefined);
  queues.set(retainDir, settled);
  void settled.then(() => {
    if (queues.get(retainDir) === settled) queues.delete(retainDir);
  });
  return next;
}

export function writeJournal(retainDir: string, journal: Journal): Promise<void> {
  return queued(retainDir, () =>
    writeFileAtomic(path.join(retainDir, JOURNAL_FILE), JSON.stringify(journal, null, 2) + '\n', 0o600),
  );
}

/** Reads, changes and writes the journal as one step among this process's writes of it. */
export function updateJournal(retainDir: string, change: Partial<Journal>): Promise<void> {
  return queued(retainDir, async () => {
    const j = await readJournal(retainDir);
    if (!j) throw new Error(`the journal of ${retainDir} is gone`);
    await writeFileAtomic(
      path.join(retainDir, JOURNAL_FILE),
      JSON.stringify({ ...j, ...change }, null, 2) + '\n',
      0o600,
    );
  });
}
