import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { progressRenderer, type ProgressRenderer } from './progress-render';
import { readRun, type RunTarget } from './progress-source';
import { ProgressTracker } from './progress-view';

export interface FollowOptions {
  /** Settles when the run has ended (its result or failure): then one last poll shows the end. */
  until: Promise<unknown>;
  renderer: ProgressRenderer;
  pollMs?: number | undefined;
}

/** Polls each target's run about once a second and shows its rows until `until` settles. */
export async function followRuns(
  client: Client,
  targets: readonly RunTarget[],
  opts: FollowOptions,
): Promise<void> {
  const tracker = new ProgressTracker();
  let ended = false;
  const settled = opts.until.then(
    () => (ended = true),
    () => (ended = true),
  );
  try {
    for (;;) {
      const last = ended;
      const readings = await Promise.all(targets.map((t) => readRun(client, t).catch(() => undefined)));
      for (const r of readings) if (r) opts.renderer.show(tracker.update(r));
      if (last) return;
      await Promise.race([sleep(opts.pollMs ?? 1000), settled]);
    }
  } finally {
    opts.renderer.stop();
  }
}

/** Progress on stderr (bars on a terminal), so that stdout keeps only the results. */
export function stderrProgress(vms: readonly string[]): ProgressRenderer {
  return progressRenderer(process.stderr, vms);
}

/** The renderer `progress` asks for, or none. */
export function progressFor(
  progress: boolean | ProgressRenderer | undefined,
  vms: readonly string[],
): ProgressRenderer | undefined {
  if (progress === false) return undefined;
  return progress === undefined || progress === true ? stderrProgress(vms) : progress;
}
