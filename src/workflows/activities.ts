import { proxyActivities } from '@temporalio/workflow';
import type { DirectoryActivities } from '../activities/directory';
import type { NodeActivities } from '../activities/node';
import type { Timing } from '../config';
import { nodeTaskQueue } from '../domain/names';

/** Directory activities on the control queue: short, retried on connection trouble. */
export const directory = proxyActivities<DirectoryActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
});

/**
 * The same, for leaf writes once a node has started changing a VM: retried for as long
 * as the directory is away, since no outage may stop a half-done backup from finishing.
 */
export const patientDirectory = proxyActivities<DirectoryActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * Node activities on the VM's node queue, in three flavours:
 * - `probe`: the first, non-destructive step. Its schedule-to-start bound is the
 *   "node not reachable" wait: nothing else polls a node's queue.
 * - `work`: snapshot, merge, retain. No schedule-to-start bound and no limit on attempts,
 *   because once a VM is half-way through a step only its node can finish or undo it;
 *   heartbeats detect a dead worker and the retry continues where the world is. Errors
 *   that retrying cannot fix are business errors, raised as non-retryable failures.
 */
export function nodeActivities(node: string, timing: Timing) {
  const taskQueue = nodeTaskQueue(node);
  const probe = proxyActivities<NodeActivities>({
    taskQueue,
    scheduleToStartTimeout: `${timing.nodeWaitSeconds}s`,
    startToCloseTimeout: '2m',
    // Node activities heartbeat every second: a dead worker shows within the heartbeat timeout.
    heartbeatTimeout: `${timing.heartbeatSeconds}s`,
    retry: {
      maximumAttempts: 10,
      initialInterval: '1s',
      maximumInterval: `${timing.retryMaxSeconds ?? 60}s`,
    },
  });
  const work = proxyActivities<NodeActivities>({
    taskQueue,
    startToCloseTimeout: '12h',
    heartbeatTimeout: `${timing.heartbeatSeconds}s`,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: `${timing.retryMaxSeconds ?? 60}s`,
      // No maximumAttempts: unlimited.
    },
  });
  // Reads of kept backups (verification): as long as a multi-GiB read takes, but given up
  // after a few attempts, since they change nothing; the next scheduled run tries again.
  const verify = proxyActivities<NodeActivities>({
    taskQueue,
    scheduleToStartTimeout: `${timing.nodeWaitSeconds}s`,
    startToCloseTimeout: '12h',
    heartbeatTimeout: `${timing.heartbeatSeconds}s`,
    retry: {
      maximumAttempts: 5,
      initialInterval: '1s',
      maximumInterval: `${timing.retryMaxSeconds ?? 60}s`,
    },
  });
  return { probe, work, verify };
}
