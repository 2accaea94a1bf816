import { loadDevEnv } from './support/dev-env';
import { WorkerProcess } from './support/worker-process';

let control: WorkerProcess | undefined;

/** One control worker for the whole run; node workers are started by each test file. */
export async function setup(): Promise<void> {
  loadDevEnv();
  // Schedule syncs are tested explicitly; a background sync would race with those tests.
  control = await WorkerProcess.start(['control'], { VMBACKUP_SCHEDULE_SYNC_MINUTES: '0' });
}

export async function teardown(): Promise<void> {
  await control?.stop();
}
