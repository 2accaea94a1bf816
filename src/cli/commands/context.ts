import { InvalidArgumentError, Option } from 'commander';
import type { Client } from '@temporalio/client';
import { temporalConfig } from '../../config';
import { connectClient } from '../../temporal/connect';
import type { Io } from '../io';

/** What every command definition gets: where to write, a Temporal client, and the exit code. */
export interface CommandContext {
  io: Io;
  /** Connects (TEMPORAL_* from the environment), runs `fn` and closes the connection. */
  withClient(fn: (client: Client) => Promise<number>): Promise<number>;
  /** Records the command's exit code. */
  exit(code: number): void;
}

export function commandContext(io: Io, exit: (code: number) => void): CommandContext {
  return {
    io,
    exit,
    async withClient(fn) {
      const client = await connectClient(temporalConfig());
      try {
        return await fn(client);
      } finally {
        await client.connection.close();
      }
    },
  };
}

/**
 * Help text written as paragraphs: single line breaks are joined, so that commander wraps it
 * to the terminal's width; a blank line separates paragraphs.
 */
export const prose = (text: string): string => text.replace(/([^\n])\n(?=[^\n])/g, '$1 ');

export const jsonOption = () =>
  new Option('--json', 'print the result as one JSON document on stdout (see docs/json.md)');

export const noProgressOption = () =>
  new Option(
    '--no-progress',
    'with --wait: no live progress on stderr (bars on a terminal, lines otherwise)',
  );

export const backupDateOption = (what = 'the backup to use (default: the latest complete one)') =>
  new Option('--backup <YYYYMMDDThhmmssZ>', what);

/** An option value that must be a positive number. */
export function positiveNumber(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n > 0)) throw new InvalidArgumentError(`${what} must be a positive number`);
    return n;
  };
}
