import { promises as fs } from 'node:fs';
import { BackupError, ErrorCode } from '../../domain/errors';
import { admitSave } from '../../domain/save-room';
import { resolveRun, type NodeDeps } from './context';
import { reportProgress } from './guard';
import { readJournal } from './journal';
import type { VmRunInput } from './types';

/** A save admitted in this worker: what it reserved where, and the file it writes. */
interface Reservation {
  dev: number;
  reserved: number;
  file: string;
}

const reservations = new Set<Reservation>();
const wakers = new Set<() => void>();
let maxParallel = 4;

/** The node's cap on parallel saves (VMBACKUP_MAX_PARALLEL_SAVES), set by the worker at start. */
export function setMaxParallelSaves(n: number): void {
  maxParallel = n;
}

async function written(file: string): Promise<number> {
  const s = await fs.stat(file).catch(() => undefined);
  return s ? s.blocks * 512 : 0;
}

export interface SaveRoomRequest {
  /** Where `virsh save` writes: the RAM disk or the retain directory. */
  dir: string;
  file: string;
  needed: number;
  ramDisk: boolean;
}

/**
 * Runs `save` once the save directory's filesystem has room for the state file beside the
 * saves already running in this worker, and fewer than the node's cap of saves run: many
 * VMs snapshotted together would otherwise all start at once and overflow a RAM disk that
 * holds them one after the other. Waits (heartbeating why) instead of failing; only a state
 * larger than the whole filesystem fails at once. Reservations live in this process only:
 * after a kill, what the filesystem says is all there is.
 */
export async function withSaveRoom<T>(req: SaveRoomRequest, save: () => Promise<T>): Promise<T> {
  const code = req.ramDisk ? ErrorCode.ramDiskTooSmall : ErrorCode.notEnoughDiskSpace;
  let mine: Reservation | undefined;
  for (;;) {
    let dev: number, free: number, total: number;
    try {
      dev = (await fs.stat(req.dir)).dev;
      const s = await fs.statfs(req.dir);
      free = s.bavail * s.bsize;
      total = s.blocks * s.bsize;
    } catch (err) {
      throw new BackupError(
        ErrorCode.noDiskSpaceInformation,
        `cannot read free space of ${req.dir}: ${(err as Error).message}`,
      );
    }
    const sizes = new Map<Reservation, number>();
    for (const r of [...reservations]) if (r.dev === dev) sizes.set(r, await written(r.file));
    // Read the reservations again without an await until ours is added: one admitted
    // meanwhile counts in full (nothing written yet), one ended no longer counts.
    const held = [...reservations]
      .filter((r) => r.dev === dev)
      .map((r) => ({ reserved: r.reserved, written: sizes.get(r) ?? 0 }));
    const decision = admitSave({
      free,
      total,
      needed: req.needed,
      onFilesystem: held,
      running: reservations.size,
      maxParallel,
    });
    if (decision.kind === 'never')
      throw new BackupError(code, `${req.dir} can never hold this VM's state: ${decision.why}`);
    if (decision.kind === 'admit') {
      mine = { dev, reserved: req.needed, file: req.file };
      reservations.add(mine);
      break;
    }
    reportProgress({
      step: 'snapshot',
      waiting:
        decision.for === 'room'
          ? `waiting for room for the state file on ${req.dir}: ${decision.why}`
          : `waiting for a save slot: ${decision.why}`,
    });
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      };
      // Space also comes free outside our saves (a state file moved on): look again soon.
      const timer = setTimeout(wake, 500);
      wakers.add(wake);
    });
  }
  try {
    return await save();
  } finally {
    reservations.delete(mine);
    for (const wake of [...wakers]) wake();
  }
}

/**
 * When this run's save began and its downtime window ended, from the VM's journal (there
 * until the retain): a multi-VM run reports from them how its saves were grouped.
 */
export async function saveSpan(
  deps: NodeDeps,
  input: VmRunInput,
): Promise<{ saveStartedAt?: number | undefined; restoredAt?: number | undefined }> {
  const j = await readJournal(resolveRun(deps, input).layout.retainDir);
  // Live mode: the pause for the last pages, by libvirt's lifecycle events.
  if (j?.mode === 'live') return { saveStartedAt: j.pausedAt, restoredAt: j.resumedAt };
  return { saveStartedAt: j?.saveStartedAt, restoredAt: j?.restoredAt };
}
