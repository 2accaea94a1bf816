import { Worker } from '@temporalio/worker';
import { createNodeActivities } from '../activities/node';
import { setMaxParallelSaves } from '../activities/node/save-slots';
import { setReadBudget } from '../activities/node/read-budget';
import { directoryConfig, nodeConfig, nodeLimits, temporalConfig, type DirectoryConfig } from '../config';
import { directoryPlacement } from '../activities/node/placement';
import { nodeTaskQueue } from '../domain/names';
import { connectWorker, withDataConverter } from '../temporal/connect';
import { startWorkerObservability } from '../observability/worker';

/**
 * The node reads the directory itself, to check that a VM it is told to act on is its own:
 * with an identity of its own that may only read (`LDAP_NODE_BIND_DN`), else the control's.
 */
export function nodeDirectory(env: NodeJS.ProcessEnv): DirectoryConfig {
  return directoryConfig({
    ...env,
    LDAP_BIND_DN: env['LDAP_NODE_BIND_DN'] || env['LDAP_BIND_DN'],
    LDAP_BIND_PASSWORD: env['LDAP_NODE_BIND_PASSWORD'] || env['LDAP_BIND_PASSWORD'],
  });
}

/**
 * The node worker: runs on one hypervisor and serves only that node's queue, with the
 * hypervisor activities. On SIGTERM it stops polling and lets a running step finish
 * (a snapshot must not be cut off in its downtime window). Its lines are JSON on stderr
 * and, with `VMBACKUP_METRICS_ADDRESS`, its metrics are served (src/observability).
 */
export async function createNodeWorker(node: string, env: NodeJS.ProcessEnv = process.env): Promise<Worker> {
  const temporal = temporalConfig(env);
  const config = nodeConfig(env);
  const limits = nodeLimits(env);
  setMaxParallelSaves(limits.maxParallelSaves);
  setReadBudget(limits.readMiBPerSecond);
  const taskQueue = nodeTaskQueue(node);
  // Before the connection: the Temporal Runtime is set up with the logger and the SDK's metrics.
  const observability = await startWorkerObservability(env, { role: 'node', node, taskQueue });
  return Worker.create({
    connection: await connectWorker(temporal),
    ...withDataConverter(env),
    namespace: temporal.namespace,
    taskQueue,
    interceptors: { activity: observability.activityInterceptors },
    activities: createNodeActivities(config, directoryPlacement(nodeDirectory(env), node)),
    // Every VM holds at most one slot (its steps run one after another), also while its save
    // waits for room: the save limits apply inside the save, so that with more slots than the
    // node has VMs a probe never queues behind long saves.
    maxConcurrentActivityTaskExecutions: limits.maxParallelActivities,
    shutdownGraceTime: '5m',
    // Heartbeat details reach the server at most this old: the CLI's progress reads them there.
    maxHeartbeatThrottleInterval: '1s',
  });
}
