/**
 * Pacing of the node's own file reads (copies and hashes of state files and disks) under a
 * budget in bytes per second shared by all of the node's runs, so that a night's copies
 * leave the disks to the guests. Each read books the next stretch of the budget's time line:
 * it starts when the reads booked before it have had their time, never before now (an idle
 * budget saves nothing up for a burst).
 */
export interface ReadBooking {
  /** How long the read waits before it starts. */
  waitMs: number;
  /** When the budget is next free: this read's start plus its bytes' share of time. */
  freeAt: number;
}

export function bookRead(freeAt: number, now: number, bytes: number, bytesPerSecond: number): ReadBooking {
  const start = Math.max(now, freeAt);
  return { waitMs: start - now, freeAt: start + (bytes / bytesPerSecond) * 1000 };
}
