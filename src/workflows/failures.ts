import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  TimeoutFailure,
} from '@temporalio/workflow';
import { BACKUP_ERROR_TYPE, ErrorCode } from '../domain/errors';

export interface FailureSummary {
  code: number;
  message: string;
  nodeUnreachable: boolean;
}

/** The contract error code and a readable message from whatever an activity or child threw. */
export function summarizeFailure(err: unknown): FailureSummary {
  let cause: unknown = err;
  while (cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) {
    if (!cause.cause) break;
    cause = cause.cause;
  }
  if (cause instanceof TimeoutFailure) {
    return {
      code: ErrorCode.undefinedError,
      message: `timed out (${cause.timeoutType})`,
      nodeUnreachable: true,
    };
  }
  if (cause instanceof ApplicationFailure) {
    const details = cause.details?.[0] as { code?: number } | undefined;
    const code =
      cause.type === BACKUP_ERROR_TYPE && typeof details?.code === 'number'
        ? details.code
        : ErrorCode.undefinedError;
    return { code, message: cause.message, nodeUnreachable: false };
  }
  return {
    code: ErrorCode.undefinedError,
    message: err instanceof Error ? err.message : String(err),
    nodeUnreachable: false,
  };
}

export function backupFailure(message: string, code: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: BACKUP_ERROR_TYPE,
    message,
    nonRetryable: true,
    details: [{ code }],
  });
}
