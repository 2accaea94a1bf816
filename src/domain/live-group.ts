/** The spread of the pause instants of a run's VMs (their backup instants), in ms; 0 for fewer than two. */
export function pauseSpreadMs(pausedAt: readonly number[]): number {
  if (pausedAt.length < 2) return 0;
  return Math.max(...pausedAt) - Math.min(...pausedAt);
}
