import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { CONTROL_TASK_QUEUE, timingFromEnv } from '../../src/config';
import { vmWorkflowId } from '../../src/workflows/ids';
import { restoreStatus, type RestoreStatus } from '../../src/workflows/messages';
import { temporal } from './harness';

export async function startRestore(
  vm: string,
  options: { backup?: string; decisionTimeoutSeconds?: number; nodeWaitSeconds?: number } = {},
): Promise<WorkflowHandle> {
  const c = await temporal();
  return c.workflow.start('restoreVm', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: vmWorkflowId(vm),
    args: [
      {
        vm,
        backup: options.backup,
        timing: {
          ...timingFromEnv(),
          ...(options.nodeWaitSeconds ? { nodeWaitSeconds: options.nodeWaitSeconds } : {}),
        },
        decisionTimeoutSeconds: options.decisionTimeoutSeconds ?? 600,
        shutdownSeconds: 2,
      },
    ],
  });
}

/** Polls the restore's status until it reaches one of `stages`. */
export async function waitForStage(
  handle: WorkflowHandle,
  stages: RestoreStatus['stage'][],
): Promise<RestoreStatus> {
  for (let i = 0; i < 600; i++) {
    const status = await handle.query(restoreStatus);
    if (stages.includes(status.stage)) return status;
    await sleep(250);
  }
  throw new Error(`restore never reached ${stages.join(' or ')}`);
}

/** The reason a workflow update was refused with (the SDK wraps it in its cause). */
export async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as { cause?: Error }).cause?.message ?? (err as Error).message;
  }
  throw new Error('the update was accepted');
}
