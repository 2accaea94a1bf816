import { ApplicationFailure } from '@temporalio/activity';
import { BACKUP_ERROR_TYPE, BackupError } from '../domain/errors';

/** Business errors become failures carrying the contract's error code, non-retryable unless transient; others are retried. */
export function asFailure<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      if (err instanceof BackupError) {
        throw ApplicationFailure.create({
          type: BACKUP_ERROR_TYPE,
          message: err.message,
          nonRetryable: !err.transient,
          details: [{ code: err.code }],
        });
      }
      throw err;
    }
  };
}
