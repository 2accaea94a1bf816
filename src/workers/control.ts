import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { createDirectoryActivities } from '../activities/directory';
import { CONTROL_TASK_QUEUE, directoryConfig, temporalConfig } from '../config';
import { connectWorker, withDataConverter } from '../temporal/connect';
import { startWorkerObservability } from '../observability/worker';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * The control worker: every workflow and the directory activities. One or more run
 * anywhere that reaches Temporal and the directory. SIGINT/SIGTERM shut it down gracefully.
 * Its lines are JSON on stderr and, with `VMBACKUP_METRICS_ADDRESS`, its metrics are served
 * (src/observability).
 */
export async function createControlWorker(env: NodeJS.ProcessEnv = process.env): Promise<Worker> {
  const temporal = temporalConfig(env);
  const directory = directoryConfig(env);
  // Before the connection: the Temporal Runtime is set up with the logger and the SDK's metrics.
  const observability = await startWorkerObservability(env, {
    role: 'control',
    taskQueue: CONTROL_TASK_QUEUE,
  });
  return Worker.create({
    connection: await connectWorker(temporal),
    ...withDataConverter(env),
    namespace: temporal.namespace,
    taskQueue: CONTROL_TASK_QUEUE,
    interceptors: { activity: observability.activityInterceptors },
    workflowsPath,
    activities: createDirectoryActivities(directory),
    shutdownGraceTime: '30s',
  });
}
