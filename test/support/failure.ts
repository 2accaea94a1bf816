import { WorkflowFailedError } from '@temporalio/client';

/** The error code and message a failed backup workflow ended with. */
export async function failureOf(
  promise: Promise<unknown>,
): Promise<{ code: number | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause as { message: string; details?: Array<{ code?: number }> };
    return { code: cause.details?.[0]?.code, message: cause.message };
  }
  throw new Error('the backup did not fail');
}
