import { BackupError, type ErrorCodeValue } from '../errors';

/**
 * What a node step does next, chosen by a pure function from a picture of the world:
 * one action, a wait for something outside us (a libvirt job), the end, or a refusal.
 */
export type Decision<A, R> =
  | { kind: 'act'; action: A }
  | { kind: 'wait'; why: string; progress?: WaitProgress | undefined }
  | { kind: 'done'; result: R }
  | { kind: 'refuse'; code: ErrorCodeValue; message: string };

export const act = <A>(action: A): { kind: 'act'; action: A } => ({ kind: 'act', action });
/** Bytes a job outside us (a block pull) has done while the step waits for it. */
export interface WaitProgress {
  file?: string | undefined;
  bytes: number;
  total: number;
}

export const wait = (
  why: string,
  progress?: WaitProgress,
): { kind: 'wait'; why: string; progress?: WaitProgress | undefined } =>
  progress ? { kind: 'wait', why, progress } : { kind: 'wait', why };
export const done = <R>(result: R): { kind: 'done'; result: R } => ({ kind: 'done', result });
export const refuse = (
  code: ErrorCodeValue,
  message: string,
): { kind: 'refuse'; code: ErrorCodeValue; message: string } => ({ kind: 'refuse', code, message });

export function refusal(d: { code: ErrorCodeValue; message: string }): BackupError {
  return new BackupError(d.code, d.message);
}

/** An action names its kind and, for per-disk or per-file actions, the disk or file. */
export interface Action<K extends string = string> {
  kind: K;
  target?: string | undefined;
}

export function describeAction(a: Action): string {
  return a.target ? `${a.kind} ${a.target}` : a.kind;
}
