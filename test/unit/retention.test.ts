import { describe, expect, it } from 'vitest';
import { expiredBackups, type RunSummary } from '../../src/domain/retention';

const D1 = '20240101T030000Z';
const D2 = '20240102T030000Z';
const D3 = '20240103T030000Z';
const D4 = '20240104T030000Z';
const D5 = '20240105T030000Z';

const ok = (runDate: string): RunSummary => ({ runDate, complete: true });
const failed = (runDate: string): RunSummary => ({ runDate, complete: false });

describe('expiredBackups', () => {
  it('deletes nothing when there are no runs', () => {
    expect(expiredBackups([], 1)).toEqual([]);
  });

  it('never deletes the only good backup', () => {
    expect(expiredBackups([ok(D1)], 1)).toEqual([]);
  });

  it('keeps the newest complete backup and deletes the older ones with iterations 1', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3)], 1)).toEqual([D1, D2]);
  });

  it('deletes the two oldest of four complete runs with iterations 2', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3), ok(D4)], 2)).toEqual([D1, D2]);
  });

  it('deletes nothing while there are no more complete backups than iterations', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3)], 3)).toEqual([]);
    expect(expiredBackups([ok(D1), ok(D2)], 5)).toEqual([]);
  });

  it('deletes exactly the one backup beyond the iterations', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3), ok(D4)], 3)).toEqual([D1]);
  });

  it('sorts the runs itself, newest kept, and lists the expired ones oldest first', () => {
    expect(expiredBackups([ok(D3), ok(D1), ok(D5), ok(D2), ok(D4)], 2)).toEqual([D1, D2, D3]);
  });

  it('never deletes an incomplete run, however old', () => {
    expect(expiredBackups([failed(D1), ok(D2), ok(D3), ok(D4)], 1)).toEqual([D2, D3]);
  });

  it('counts only complete backups towards the iterations', () => {
    // D4 and D2 are the two newest complete backups; the failed D3 does not take a slot.
    expect(expiredBackups([ok(D1), ok(D2), failed(D3), ok(D4)], 2)).toEqual([D1]);
  });

  it('deletes nothing when the newest run is incomplete (a failed night)', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3), failed(D4)], 1)).toEqual([]);
  });

  it('deletes nothing after a failed night even when the input is unsorted', () => {
    expect(expiredBackups([failed(D4), ok(D2), ok(D1), ok(D3)], 1)).toEqual([]);
    expect(expiredBackups([ok(D2), failed(D5), ok(D1), ok(D3), ok(D4)], 1)).toEqual([]);
  });

  it('deletes nothing when every run is incomplete', () => {
    expect(expiredBackups([failed(D1), failed(D2)], 1)).toEqual([]);
  });

  it('resumes deleting once a newer night is complete again', () => {
    expect(expiredBackups([ok(D1), ok(D2), failed(D3), ok(D4)], 1)).toEqual([D1, D2]);
  });

  it('treats iterations 0 as 1, keeping the newest complete backup', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3)], 0)).toEqual([D1, D2]);
  });

  it('treats negative iterations as 1', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3)], -2)).toEqual([D1, D2]);
  });

  it('rounds fractional iterations down', () => {
    expect(expiredBackups([ok(D1), ok(D2), ok(D3), ok(D4)], 2.9)).toEqual([D1, D2]);
  });

  it('treats fractional iterations below 1 as 1', () => {
    expect(expiredBackups([ok(D1), ok(D2)], 0.5)).toEqual([D1]);
  });

  it('does not modify the runs it is given', () => {
    const runs = [ok(D3), ok(D1), ok(D2)];
    const copy = runs.map((r) => ({ ...r }));
    expiredBackups(runs, 1);
    expect(runs).toEqual(copy);
  });
});

describe('expiredBackups regressions', () => {
  it('keeps the newest backup when the iteration count is not a number', () => {
    const runs = [
      { runDate: '20240101T030000Z', complete: true },
      { runDate: '20240102T030000Z', complete: true },
    ];
    expect(expiredBackups(runs, Number.NaN)).toEqual(['20240101T030000Z']);
  });
});

describe('expiredBackups retries unfinished deletions', () => {
  const stuck = (runDate: string): RunSummary => ({ runDate, complete: false, beingDeleted: true });

  it('deletes again a run whose earlier deletion did not finish', () => {
    expect(expiredBackups([stuck(D1), ok(D2), ok(D3)], 2)).toEqual([D1]);
  });

  it('adds it to the runs that expire now', () => {
    expect(expiredBackups([stuck(D1), ok(D2), ok(D3), ok(D4)], 2)).toEqual([D1, D2]);
  });

  it('still deletes nothing when the newest run failed', () => {
    expect(expiredBackups([stuck(D1), ok(D2), failed(D3)], 1)).toEqual([]);
  });
});

describe('expiredBackups keeps the newest backup that passed verification', () => {
  const checked = (runDate: string, verified: RunSummary['verified']): RunSummary => ({
    runDate,
    complete: true,
    verified,
  });

  it('keeps the newest passed backup when the kept one failed verification', () => {
    expect(expiredBackups([checked(D1, 'passed'), checked(D2, 'passed'), checked(D3, 'failed')], 1)).toEqual([
      D1,
    ]);
  });

  it('keeps it when the kept ones are not verified yet', () => {
    expect(expiredBackups([checked(D1, 'passed'), ok(D2), ok(D3)], 2)).toEqual([]);
  });

  it('deletes older passed backups once the kept one passed too', () => {
    expect(expiredBackups([checked(D1, 'passed'), checked(D2, 'passed'), checked(D3, 'passed')], 1)).toEqual([
      D1,
      D2,
    ]);
  });

  it('keeps only the newest passed backup beside an unverified kept one', () => {
    expect(expiredBackups([checked(D1, 'passed'), checked(D2, 'passed'), ok(D3)], 1)).toEqual([D1]);
  });

  it('keeps only the newest passed one, not every older passed backup', () => {
    expect(
      expiredBackups([checked(D1, 'passed'), checked(D2, 'passed'), checked(D3, 'failed'), ok(D4)], 2),
    ).toEqual([D1]);
  });

  it('counts a backup without manifest as not proven', () => {
    expect(expiredBackups([checked(D1, 'passed'), checked(D2, 'no-manifest')], 1)).toEqual([]);
  });
});
