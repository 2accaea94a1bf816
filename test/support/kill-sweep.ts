import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkerProcess } from './worker-process';

/** Crash points `<step>:<kind>:before|after` around every action kind of a step. */
export function actionBoundaries(step: string, kinds: readonly string[]): string[] {
  return kinds.flatMap((k) => [`${step}:${k}:before`, `${step}:${k}:after`]);
}

/** The marker file name the node worker writes when a point fires. */
const markerName = (point: string) => `${point.replace(/[^\w.-]+/g, '_')}.fired`;

export interface SweepOutcome<R> {
  result?: R;
  error?: unknown;
  kills: number;
  fired: string[];
}

/**
 * Runs a workflow while a node worker kills itself (SIGKILL) at each armed point once,
 * restarting the worker after every kill, until the workflow ends. `whileDead` checks the
 * world each time no worker runs.
 */
export async function runWithKills<R>(args: {
  node: string;
  dir: string;
  points: string[];
  env?: Record<string, string>;
  start: () => Promise<WorkflowHandle>;
  whileDead?: () => Promise<void>;
}): Promise<SweepOutcome<R>> {
  await fs.mkdir(args.dir, { recursive: true });
  const env = {
    VMBACKUP_FAILPOINTS: args.points.join(','),
    VMBACKUP_FAILPOINT_DIR: args.dir,
    ...args.env,
  };
  // The first worker is up before the run starts: the run's first step waits for it only briefly.
  let worker = await WorkerProcess.start(['node', '--node', args.node], env);
  const handle = await args.start();
  const ended = handle.result().then(
    (result) => ({ result: result as R }),
    (error: unknown) => ({ error }),
  );
  let kills = 0;
  for (let first = true; ; first = false) {
    if (!first) worker = await WorkerProcess.start(['node', '--node', args.node], env);
    const next = await Promise.race([worker.waitForExit().then((exit) => ({ exit })), ended]);
    if ('exit' in next) {
      if (next.exit !== 'SIGKILL')
        throw new Error(`node worker ended with ${String(next.exit)}:\n${worker.output}`);
      kills++;
      if (kills > args.points.length)
        throw new Error('the worker was killed more often than there are points');
      await args.whileDead?.();
      continue;
    }
    await worker.stop();
    const fired = (await fs.readdir(args.dir)).filter((f) => f.endsWith('.fired'));
    const byMarker = new Map(args.points.map((p) => [markerName(p), p]));
    return { ...next, kills, fired: fired.map((f) => byMarker.get(f) ?? f).sort() };
  }
}

/** Every armed point except those the scenario cannot reach (each named with the reason). */
export function expectedOnPath(points: string[], offPath: Record<string, string>): string[] {
  const off = new Set(Object.keys(offPath));
  return points.filter((p) => !off.has(p.replace(/:(before|after)$/, ''))).sort();
}

export const inDir = (dir: string, ...parts: string[]) => path.join(dir, ...parts);
