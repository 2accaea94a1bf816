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

export async function writeJournal(retainDir: string, journal: Journal): Promise<void> {
  await writeFileAtomic(path.join(retainDir, JOURNAL_FILE), JSON.stringify(journal, null, 2) + '\n', 0o600);
}
