import { AsyncLocalStorage } from 'node:async_hooks';
import { execa } from 'execa';

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | undefined,
  ) {
    super(
      `${command} failed${exitCode !== undefined ? ` (exit ${exitCode})` : ''}: ${stderr.trim() || 'no message'}`,
    );
  }
}

/**
 * A command that could not do its work for a reason outside this program that passes —
 * libvirtd frozen, restarting or gone for a while. Not a business error: the step waits
 * and looks at the world again (and an activity failing with it is retried).
 */
export class TransientCommandError extends Error {
  override name = 'TransientCommandError';
}

/** A command killed at its time limit. */
export class CommandTimeoutError extends TransientCommandError {
  override name = 'CommandTimeoutError';
  constructor(
    readonly command: string,
    readonly seconds: number,
  ) {
    super(
      command.startsWith('virsh ')
        ? `libvirt did not answer ${command} within ${seconds} s`
        : `${command} did not finish within ${seconds} s`,
    );
  }
}

/** virsh could not reach libvirtd, or lost it in the middle of a call (libvirtd restarting). */
export class LibvirtUnreachableError extends TransientCommandError {
  override name = 'LibvirtUnreachableError';
  constructor(
    readonly command: string,
    detail: string,
  ) {
    super(`libvirt is not reachable for ${command}: ${detail.trim().split('\n')[0]}`);
  }
}

/**
 * How long a kind of command may take before it is killed:
 * - `query`: answers at once unless libvirtd (or the storage) hangs — domstate, dumpxml,
 *   blockjob, qemu-img info, …;
 * - `long`: changes state and may legitimately take minutes with GiBs of RAM — save,
 *   restore, start, define, shutdown, destroy, qemu-img check;
 * - `unbounded`: copies, which take as long as the data needs and report progress themselves.
 */
export type CommandKind = 'query' | 'long' | 'unbounded';

const LIMITS = {
  query: { variable: 'VMBACKUP_VIRSH_QUERY_TIMEOUT_SECONDS', seconds: 60 },
  long: { variable: 'VMBACKUP_VIRSH_LONG_TIMEOUT_SECONDS', seconds: 1800 },
} as const;

/** The time limit of a kind of command in seconds (from the node worker's environment), or undefined. */
export function limitSeconds(kind: CommandKind, env: NodeJS.ProcessEnv = process.env): number | undefined {
  if (kind === 'unbounded') return undefined;
  const { variable, seconds } = LIMITS[kind];
  const raw = env[variable];
  if (raw === undefined || raw === '') return seconds;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`${variable} must be a positive number of seconds, not ${raw}`);
  return n;
}

export interface RunOptions {
  input?: string;
  /** Default `unbounded`. */
  kind?: CommandKind;
  /** Overrides the kind's limit. */
  timeoutSeconds?: number;
  /** Names the command in a time-out error (`virsh domstate`); default the program and its first arguments. */
  label?: string;
}

const seen = new AsyncLocalStorage<{ last?: TransientCommandError }>();

/** Records a transient failure for `keepingTransient`; throw what it returns. */
export function transient<E extends TransientCommandError>(err: E): E {
  const store = seen.getStore();
  if (store) store.last = err;
  return err;
}

/**
 * Runs `fn`; when it fails because a command inside it failed transiently, throws that
 * command's error even if a caller wrapped it on the way (`step()` turns every failure into
 * a business error, which would end the run instead of waiting for libvirt).
 */
export async function keepingTransient<T>(fn: () => Promise<T>): Promise<T> {
  const store: { last?: TransientCommandError } = {};
  try {
    return await seen.run(store, fn);
  } catch (err) {
    const last = store.last;
    if (last && err !== last && err instanceof Error && err.message.includes(last.message)) throw last;
    throw err;
  }
}

/** Runs a program with an argument array (never a shell) and returns its stdout. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const seconds = options.timeoutSeconds ?? limitSeconds(options.kind ?? 'unbounded');
  const command = `${file} ${args.slice(0, 4).join(' ')}`;
  const result = await execa(file, args, {
    reject: false,
    // A worker shutting down (SIGTERM) must let a running virsh finish, not kill it mid-save.
    cleanup: false,
    // Only a command past its limit is killed, and at once: virsh handles SIGINT by aborting
    // the libvirt job, SIGKILL leaves a job (a save) to libvirtd, which the step then waits for.
    ...(seconds !== undefined ? { timeout: seconds * 1000, killSignal: 'SIGKILL' as const } : {}),
    input: options.input,
    stripFinalNewline: true,
    env: { LC_ALL: 'C' },
  });
  if (result.timedOut) throw transient(new CommandTimeoutError(options.label ?? command, seconds!));
  if (result.exitCode !== 0 || result.failed) {
    throw new CommandError(command, String(result.stderr || result.message || ''), result.exitCode);
  }
  return String(result.stdout);
}
