import { describe, expect, it } from 'vitest';
import { changedNothing, isBeingDeleted, isCompleteRun } from '../../src/domain/runs';

describe('isCompleteRun', () => {
  it('counts a run that ended finished with return value 0 as complete', () => {
    expect(isCompleteRun({ mode: 'finished', returnValue: 0 })).toBe(true);
  });

  it('counts a finished run without a return value as complete', () => {
    expect(isCompleteRun({ mode: 'finished', returnValue: undefined })).toBe(true);
  });

  it.each([1, 5, 11, 47])('counts a finished run with return value %i as incomplete', (returnValue) => {
    expect(isCompleteRun({ mode: 'finished', returnValue })).toBe(false);
  });

  it.each([
    'initialize',
    'initialized',
    'snapshot',
    'snapshotting',
    'snapshotted',
    'merge',
    'merging',
    'merged',
    'retain',
    'retaining',
    'retained',
  ])('counts a backup stopped in mode %s as incomplete, even with return value 0', (mode) => {
    expect(isCompleteRun({ mode, returnValue: 0 })).toBe(false);
  });

  it('counts a run stopped in snapshotting without a return value as incomplete', () => {
    expect(isCompleteRun({ mode: 'snapshotting', returnValue: undefined })).toBe(false);
  });

  it.each(['delete', 'deleting', 'deleted', '', 'unknown'])(
    'counts a leaf in mode %j as incomplete',
    (mode) => {
      expect(isCompleteRun({ mode, returnValue: 0 })).toBe(false);
    },
  );

  it.each([
    'unretainSmallFiles',
    'unretainingSmallFiles',
    'unretainedSmallFiles',
    'unretainLargeFiles',
    'unretainingLargeFiles',
    'unretainedLargeFiles',
    'restore',
    'restoring',
    'restored',
  ])('counts a leaf in restore mode %s as a complete backup', (mode) => {
    expect(isCompleteRun({ mode, returnValue: 0 })).toBe(true);
  });

  it.each([
    'UNRETAINSMALLFILES',
    'unretainingsmallfiles',
    'UnretainedLargeFiles',
    'RESTORE',
    'Restoring',
    'reStored',
  ])('recognises restore mode %s regardless of case', (mode) => {
    expect(isCompleteRun({ mode, returnValue: undefined })).toBe(true);
  });

  it('counts a leaf in a restore mode as a complete backup even when the restore failed', () => {
    expect(isCompleteRun({ mode: 'restoring', returnValue: 21 })).toBe(true);
    expect(isCompleteRun({ mode: 'unretainedSmallFiles', returnValue: 24 })).toBe(true);
  });

  it('does not take a restore mode with surrounding text for a restore mode', () => {
    expect(isCompleteRun({ mode: 'restored ', returnValue: 0 })).toBe(false);
    expect(isCompleteRun({ mode: 'prerestore', returnValue: 0 })).toBe(false);
  });
});

describe('isCompleteRun regressions', () => {
  it('reads the mode case-insensitively, as the directory compares it', () => {
    expect(isCompleteRun({ mode: 'FINISHED', returnValue: 0 })).toBe(true);
    expect(isCompleteRun({ mode: 'Finished', returnValue: 0 })).toBe(true);
  });
});

describe('changedNothing', () => {
  it.each(['initialize', 'initialized', 'snapshot', 'SNAPSHOT'])(
    'is true for a run that ended at %s',
    (mode) => {
      expect(changedNothing({ mode })).toBe(true);
    },
  );

  it.each(['snapshotting', 'snapshotted', 'merging', 'retaining', 'finished', 'deleting'])(
    'is false once the node may have acted (%s)',
    (mode) => {
      expect(changedNothing({ mode })).toBe(false);
    },
  );
});

describe('isBeingDeleted', () => {
  it.each([
    ['delete', true],
    ['Deleting', true],
    ['deleted', false],
    ['finished', false],
  ] as const)('%s → %s', (mode, expected) => {
    expect(isBeingDeleted({ mode })).toBe(expected);
  });
});
