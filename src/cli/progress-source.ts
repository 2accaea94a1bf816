import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import {
  decodeFromPayloadsAtIndex,
  decodeOptionalFailureToOptionalError,
} from '@temporalio/common/lib/internal-non-workflow';
import { backupProgress, restoreStatus } from '../workflows/messages';
import type { ActivityReading, RunReading } from './progress-view';

/**
 * The Temporal half of live progress: one VM's run read as `describe` (status, pending
 * activities with their heartbeat details) plus the workflow's stage query. Heartbeat details
 * and failures are decoded with the client's data converter: with the payload codec they are
 * encrypted on the server.
 */

/** Whose run to read: a workflow ID, and which of the runs under it counts. */
export interface RunTarget {
  vm: string;
  workflowId: string;
  /** This run exactly (a run the CLI started or found running). */
  runId?: string | undefined;
  /** Only a run started by this workflow counts (a multi-VM run's child); others are `pending`. */
  parentWorkflowId?: string | undefined;
}

/** The stage query of each workflow type that has one. */
const stageQueries: Record<string, QueryDefinition<{ stage: string }, []>> = {
  backupVm: backupProgress,
  restoreVm: restoreStatus,
};

async function activities(client: Client, d: WorkflowExecutionDescription): Promise<ActivityReading[]> {
  const converter = client.options.loadedDataConverter;
  return Promise.all(
    (d.raw.pendingActivities ?? []).map(async (a): Promise<ActivityReading> => {
      let details: unknown;
      try {
        details = a.heartbeatDetails?.payloads?.length
          ? await decodeFromPayloadsAtIndex(converter, 0, a.heartbeatDetails.payloads)
          : undefined;
      } catch {
        details = undefined; // a payload this client cannot decode (other keys): no details
      }
      let lastFailure: string | undefined;
      try {
        lastFailure = (await decodeOptionalFailureToOptionalError(converter, a.lastFailure))?.message;
      } catch {
        lastFailure = a.lastFailure?.message ?? undefined;
      }
      return {
        activityType: a.activityType?.name ?? '?',
        attempt: a.attempt ?? 1,
        details,
        ...(lastFailure && { lastFailure }),
      };
    }),
  );
}

/** The workflow run under an ID, or undefined when there is none. */
export async function describeRun(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await client.workflow.getHandle(workflowId, runId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** One poll of one VM's run. */
export async function readRun(client: Client, target: RunTarget, now = Date.now): Promise<RunReading> {
  const d = await describeRun(client, target.workflowId, target.runId);
  const pending: RunReading = { vm: target.vm, at: now(), status: 'pending', activities: [] };
  if (!d) return pending;
  if (target.parentWorkflowId && d.parentExecution?.workflowId !== target.parentWorkflowId) return pending;
  const status = d.status.name;
  if (status !== 'RUNNING') {
    return {
      vm: target.vm,
      at: now(),
      status: status === 'COMPLETED' ? 'completed' : 'failed',
      activities: [],
    };
  }
  const query = stageQueries[d.type];
  let stage: string | undefined;
  if (query) {
    try {
      stage = (await client.workflow.getHandle(target.workflowId, d.runId).query(query)).stage;
    } catch {
      stage = undefined; // no workflow task has run yet, or the worker is away: describe still says enough
    }
  }
  return { vm: target.vm, at: now(), status: 'running', stage, activities: await activities(client, d) };
}
