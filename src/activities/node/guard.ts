import { Context } from '@temporalio/activity';

const locks = new Map<string, Promise<unknown>>();

/**
 * Runs node activities of one VM one at a time in this worker. Temporal may start a retry
 * while an earlier attempt still runs (a missed heartbeat); two attempts moving the same
 * disks at once would be a disaster, so the later one waits and then looks at the world.
 */
export async function oneAtATime<T>(vm: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(vm) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(fn);
  locks.set(vm, current);
  try {
    return await current;
  } finally {
    if (locks.get(vm) === current) locks.delete(vm);
  }
}

/**
 * Heartbeats every second for as long as the activity runs, with the latest progress its
 * code reported, so that only a dead or frozen worker misses its heartbeat timeout.
 */
export async function heartbeating<T>(fn: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(lastDetails.get(ctx) ?? { alive: true }), 1000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
    lastDetails.delete(ctx);
  }
}

const lastDetails = new WeakMap<Context, unknown>();

/** Records progress for the next heartbeat, and sends one now. */
export function reportProgress(details: unknown): void {
  const ctx = Context.current();
  lastDetails.set(ctx, details);
  ctx.heartbeat(details);
}
