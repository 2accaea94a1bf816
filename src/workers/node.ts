import { Worker } from '@temporalio/worker';
import { createNodeActivities } from '../activities/node';
import { nodeConfig, temporalConfig } from '../config';
import { nodeTaskQueue } from '../domain/names';
import { connectWorker } from './connection';

/**
 * The node worker: runs on one hypervisor and serves only that node's queue, with the
 * hypervisor activities. On SIGTERM it stops polling and lets a running step finish
 * (a snapshot must not be cut off in its downtime window).
 */
export async function createNodeWorker(node: string, env: NodeJS.ProcessEnv = process.env): Promise<Worker> {
  const temporal = temporalConfig(env);
  const config = nodeConfig(env);
  return Worker.create({
    connection: await connectWorker(temporal),
    namespace: temporal.namespace,
    taskQueue: nodeTaskQueue(node),
    activities: createNodeActivities(config),
    shutdownGraceTime: '5m',
  });
}
