import { expect } from 'vitest';
import { BackupError } from '../../src/domain/errors';

/**
 * Runs `fn`, insists that it throws a BackupError carrying `code` (the contract's return
 * value, written as a literal number so that a renumbered constant is caught too) and
 * returns the error for further assertions.
 */
export function expectBackupError(fn: () => unknown, code: number, message?: string | RegExp): BackupError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a BackupError to be thrown').toBeInstanceOf(BackupError);
  const error = thrown as BackupError;
  expect(error.name).toBe('BackupError');
  expect(error.code).toBe(code);
  if (message !== undefined) expect(error.message).toMatch(message);
  return error;
}
