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

/** Runs a program with an argument array (never a shell) and returns its stdout. */
export async function run(
  file: string,
  args: readonly string[],
  options: { input?: string } = {},
): Promise<string> {
  const result = await execa(file, args, {
    reject: false,
    // A worker shutting down (SIGTERM) must let a running virsh finish, not kill it mid-save.
    cleanup: false,
    input: options.input,
    stripFinalNewline: true,
    env: { LC_ALL: 'C' },
  });
  if (result.exitCode !== 0 || result.failed) {
    throw new CommandError(
      `${file} ${args.slice(0, 4).join(' ')}`,
      String(result.stderr || result.message || ''),
      result.exitCode,
    );
  }
  return String(result.stdout);
}
