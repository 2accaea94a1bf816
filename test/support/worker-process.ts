import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from './dev-env';

/** A worker run exactly as operators run it: `vmbackup worker …` in its own process. */
export class WorkerProcess {
  private exited: Promise<NodeJS.Signals | number | null>;
  output = '';

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  }

  static async start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<WorkerProcess> {
    const child = spawn(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, 'worker', ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const worker = new WorkerProcess(child);
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        worker.output += chunk.toString();
        if (/worker .*running on queue/.test(worker.output)) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => (worker.output += chunk.toString()));
      child.once('exit', () => reject(new Error(`worker ${args.join(' ')} exited early:\n${worker.output}`)));
      setTimeout(
        () => reject(new Error(`worker ${args.join(' ')} did not start:\n${worker.output}`)),
        60_000,
      ).unref();
    });
    return worker;
  }

  /** Resolves with the signal or exit code once the process has ended. */
  waitForExit(): Promise<NodeJS.Signals | number | null> {
    return this.exited;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }
}
