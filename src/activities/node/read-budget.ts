import { setTimeout as sleep } from 'node:timers/promises';
import { bookRead } from '../../domain/read-pace';

/** Bytes per second of the node's reads (VMBACKUP_READ_MIB_PER_SECOND); 0: unlimited. */
let bytesPerSecond = 0;
let freeAt = 0;

/** Set by the node worker at start: one budget for every run of the worker. */
export function setReadBudget(mibPerSecond: number): void {
  bytesPerSecond = mibPerSecond * 1024 * 1024;
  freeAt = 0;
}

/** Resolves when the budget lets a read of `bytes` start. */
export async function awaitReadBudget(bytes: number): Promise<void> {
  if (bytesPerSecond <= 0) return;
  const booking = bookRead(freeAt, Date.now(), bytes, bytesPerSecond);
  freeAt = booking.freeAt;
  if (booking.waitMs > 0) await sleep(booking.waitMs);
}
