import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { createDirectoryActivities } from '../activities/directory';
import { CONTROL_TASK_QUEUE, directoryConfig, temporalConfig } from '../config';
import { connectWorker, withDataConverter } from '../temporal/connect';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * The control worker: every workflow and the directory activities. One or more run
 * anywhere that reaches Temporal and the directory. SIGINT/SIGTERM shut it down gracefully.
 */
export async function createControlWorker(env: NodeJS.ProcessEnv = process.env): Promise<Worker> {
  const temporal = temporalConfig(env);
  const directory = directoryConfig(env);
  return Worker.create({
    connection: await connectWorker(temporal),
    ...withDataConverter(env),
    namespace: temporal.namespace,
    taskQueue: CONTROL_TASK_QUEUE,
    workflowsPath,
    activities: createDirectoryActivities(directory),
    shutdownGraceTime: '30s',
  });
}
