import { Worker } from '@temporalio/worker';
import { createNodeActivities } from '../activities/node';
import { setMaxParallelSaves } from '../activities/node/save-slots';
import { nodeConfig, nodeLimits, temporalConfig } from '../config';
import { nodeTaskQueue } from '../domain/names';
import { connectWorker, dataConverter } from './connection';

/**
 * The node worker: runs on one hypervisor and serves only that node's queue, with the
 * hypervisor activities. On SIGTERM it stops polling and lets a running step finish
 * (a snapshot must not be cut off in its downtime window).
 */
export async function createNodeWorker(node: string, env: NodeJS.ProcessEnv = process.env): Promise<Worker> {
  const temporal = temporalConfig(env);
  const config = nodeConfig(env);
  const limits = nodeLimits(env);
  setMaxParallelSaves(limits.maxParallelSaves);
  return Worker.create({
    connection: await connectWorker(temporal),
    ...withDataConverter(env),
    namespace: temporal.namespace,
    taskQueue: nodeTaskQueue(node),
    activities: createNodeActivities(config),
    // Every VM holds at most one slot (its steps run one after another), also while its save
    // waits for room: the save limits apply inside the save, so that with more slots than the
    // node has VMs a probe never queues behind long saves.
    maxConcurrentActivityTaskExecutions: limits.maxParallelActivities,
    shutdownGraceTime: '5m',
  });
}

function withDataConverter(env: NodeJS.ProcessEnv) {
  const converter = dataConverter(env);
  return converter ? { dataConverter: converter } : {};
}
