import { describe, expect, it } from 'vitest';
import {
  BackupSteps,
  backupModes,
  doneUpdate,
  executionTime,
  failedUpdate,
  goUpdate,
  runningUpdate,
} from '../../src/domain/protocol';

describe('backup steps and modes', () => {
  it('runs snapshot, merge and retain in this order', () => {
    expect(BackupSteps).toEqual(['snapshot', 'merge', 'retain']);
  });

  it('uses the portal mode names of the contract', () => {
    expect(backupModes).toEqual({
      snapshot: { go: 'snapshot', running: 'snapshotting', done: 'snapshotted' },
      merge: { go: 'merge', running: 'merging', done: 'merged' },
      retain: { go: 'retain', running: 'retaining', done: 'retained' },
    });
  });
});

describe('leaf updates', () => {
  it('writes a "go" with state 0 and no return value', () => {
    expect(goUpdate('snapshot')).toEqual({ mode: 'snapshot', state: '0' });
    expect(goUpdate('merge')).toEqual({ mode: 'merge', state: '0' });
    expect(goUpdate('retain')).toEqual({ mode: 'retain', state: '0' });
  });

  it('marks work under way with the "-ing" mode and state 0', () => {
    expect(runningUpdate('snapshot')).toEqual({ mode: 'snapshotting', state: '0' });
    expect(runningUpdate('merge')).toEqual({ mode: 'merging', state: '0' });
    expect(runningUpdate('retain')).toEqual({ mode: 'retaining', state: '0' });
  });

  it('finishes a step with the "-ed" mode, return value 0 and the current time', () => {
    expect(doneUpdate('merge')).toEqual({
      mode: 'merged',
      state: 'now',
      returnValue: 0,
      executionTimes: undefined,
    });
    expect(doneUpdate('retain').mode).toBe('retained');
  });

  it('carries the execution times of a finished step', () => {
    expect(doneUpdate('snapshot', ['snapshot: 5', 'downtime: 2'])).toEqual({
      mode: 'snapshotted',
      state: 'now',
      returnValue: 0,
      executionTimes: ['snapshot: 5', 'downtime: 2'],
    });
  });

  it('reports a failure with the "-ing" mode, state 0 and the error code', () => {
    expect(failedUpdate('snapshot', 5)).toEqual({ mode: 'snapshotting', state: '0', returnValue: 5 });
    expect(failedUpdate('merge', 11)).toEqual({ mode: 'merging', state: '0', returnValue: 11 });
    expect(failedUpdate('retain', 46)).toEqual({ mode: 'retaining', state: '0', returnValue: 46 });
  });
});

describe('executionTime', () => {
  it.each([
    [0, 'downtime: 0'],
    [1, 'downtime: 1'],
    [999, 'downtime: 1'],
    [1000, 'downtime: 1'],
    [1001, 'downtime: 2'],
    [4500, 'downtime: 5'],
    [60_000, 'downtime: 60'],
  ])('rounds %i ms up to whole seconds', (ms, expected) => {
    expect(executionTime('downtime', ms)).toBe(expected);
  });

  it('never reports a negative duration', () => {
    expect(executionTime('snapshot', -2500)).toBe('snapshot: 0');
  });

  it('writes the label followed by a colon and a space', () => {
    expect(executionTime('snapshot', 5000)).toBe('snapshot: 5');
  });
});
