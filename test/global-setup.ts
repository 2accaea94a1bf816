import { loadDevEnv } from './support/dev-env';
import { WorkerProcess } from './support/worker-process';

let control: WorkerProcess | undefined;

/** One control worker for the whole run; node workers are started by each test file. */
export async function setup(): Promise<void> {
  loadDevEnv();
  control = await WorkerProcess.start(['control']);
}

export async function teardown(): Promise<void> {
  await control?.stop();
}
