import type { DataConverter } from '@temporalio/common';

/** The payload codec of every client and worker (none configured: payloads stay plain). */
export function dataConverterFromEnv(_env: NodeJS.ProcessEnv): DataConverter | undefined {
  return undefined;
}
