import { describe, expect, it } from 'vitest';
import {
  formatAmount,
  formatBytes,
  formatDuration,
  formatLine,
  LineThrottle,
  ProgressTracker,
  type ActivityReading,
  type ProgressRow,
  type RunReading,
} from '../../src/cli/progress-view';

const MiB = 1024 * 1024;
const T0 = Date.parse('2025-01-02T03:04:05.000Z');

const reading = (
  at: number,
  stage: string | undefined,
  activities: ActivityReading[] = [],
  status: RunReading['status'] = 'running',
): RunReading => ({ vm: 'vm1', at, status, stage, activities });
const retain = (file: string, bytes: number, total: number, attempt = 1): ActivityReading => ({
  activityType: 'retain',
  attempt,
  details: { step: 'retain', file, bytes, total },
});

describe('progress rows from describe + query', () => {
  it('takes the stage from the workflow and bytes, file, step from the StepProgress heartbeat', () => {
    const t = new ProgressTracker();
    const [row] = t.update(reading(T0, 'retain', [retain('vm1.state.X', 10 * MiB, 100 * MiB)]));
    expect(row).toMatchObject({
      vm: 'vm1',
      state: 'running',
      stage: 'retain',
      step: 'retain',
      file: 'vm1.state.X',
      bytes: 10 * MiB,
      total: 100 * MiB,
    });
    expect(row!.rate).toBeUndefined(); // one sample: too little to tell
  });

  it('gives rate and ETA from successive samples of the same file', () => {
    const t = new ProgressTracker();
    t.update(reading(T0, 'retain', [retain('f', 10 * MiB, 100 * MiB)]));
    t.update(reading(T0 + 1000, 'retain', [retain('f', 20 * MiB, 100 * MiB)]));
    const [row] = t.update(reading(T0 + 2000, 'retain', [retain('f', 30 * MiB, 100 * MiB)]));
    expect(row!.rate).toBeCloseTo(10 * MiB);
    expect(row!.etaSeconds).toBeCloseTo(7);
  });

  it('starts the samples afresh for another file, step or attempt, or when the bytes go back', () => {
    const t = new ProgressTracker();
    t.update(reading(T0, 'retain', [retain('a', 10 * MiB, 100 * MiB)]));
    t.update(reading(T0 + 1000, 'retain', [retain('a', 20 * MiB, 100 * MiB)]));
    const rows = t.update(reading(T0 + 2000, 'retain', [retain('b', 1 * MiB, 50 * MiB)]));
    expect(rows.at(-1)!.rate).toBeUndefined();
    const retried = t.update(reading(T0 + 3000, 'retain', [retain('b', 0, 50 * MiB, 2)]));
    expect(retried).toHaveLength(1); // a retry is no proof the file was done
    expect(retried[0]).toMatchObject({ attempt: 2, rate: undefined });
  });

  it('shows a file finished when the same activity moved on to the next one between two polls', () => {
    const t = new ProgressTracker();
    t.update(reading(T0, 'retain', [retain('a', 90 * MiB, 100 * MiB)]));
    const rows = t.update(reading(T0 + 1000, 'retain', [retain('b', 5 * MiB, 50 * MiB)]));
    expect(rows.map((r) => [r.file, r.bytes, r.total])).toEqual([
      ['a', 100 * MiB, 100 * MiB],
      ['b', 5 * MiB, 50 * MiB],
    ]);
    // and when the stage went on past the last file
    const end = t.update(reading(T0 + 2000, 'finished', []));
    expect(end.map((r) => [r.file, r.bytes])).toEqual([
      ['b', 50 * MiB],
      [undefined, undefined],
    ]);
  });

  it('does not call a copy finished when the run failed', () => {
    const t = new ProgressTracker();
    t.update(reading(T0, 'retain', [retain('a', 90 * MiB, 100 * MiB)]));
    const rows = t.update(reading(T0 + 1000, undefined, [], 'failed'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'failed', stage: 'failed' });
  });

  it('reads what old-shape heartbeats have, and the step or activity when the workflow has no stage', () => {
    const t = new ProgressTracker();
    const [old] = t.update(
      reading(T0, undefined, [
        {
          activityType: 'snapshot',
          attempt: 1,
          details: { step: 'snapshot', copying: 'vda', bytes: 5, of: 9 },
        },
      ]),
    );
    expect(old).toMatchObject({ stage: 'snapshot', bytes: 5, total: undefined });
    const [bare] = new ProgressTracker().update(
      reading(T0, undefined, [{ activityType: 'restoreAs', attempt: 1, details: { alive: true } }]),
    );
    expect(bare).toMatchObject({ stage: 'restoreAs', step: undefined });
  });

  it('prefers the activity that reports a step, and shows waiting, retries and the last failure', () => {
    const [row] = new ProgressTracker().update(
      reading(T0, 'merge', [
        { activityType: 'other', attempt: 1, details: undefined },
        {
          activityType: 'merge',
          attempt: 3,
          details: { step: 'merge', waiting: 'block job running' },
          lastFailure: 'heartbeat timeout',
        },
      ]),
    );
    expect(row).toMatchObject({ step: 'merge', waiting: 'block job running', attempt: 3 });
    expect(formatLine(row!)).toBe(
      '2025-01-02T03:04:05.000Z vm1 merge waiting: block job running; attempt 3 (last: heartbeat timeout)',
    );
  });

  it('marks pending, done and failed runs', () => {
    const t = new ProgressTracker();
    expect(t.update({ ...reading(T0, undefined), status: 'pending', vm: 'a' })[0]).toMatchObject({
      state: 'pending',
      stage: 'pending',
    });
    expect(t.update({ ...reading(T0, undefined), status: 'completed', vm: 'b' })[0]).toMatchObject({
      state: 'done',
      stage: 'finished',
    });
  });
});

describe('plain progress lines', () => {
  const row = (over: Partial<ProgressRow>): ProgressRow => ({
    vm: 'vm1',
    at: T0,
    state: 'running',
    stage: 'retain',
    ...over,
  });

  it('formats time, VM, stage, file, bytes of total, rate and ETA', () => {
    expect(
      formatLine(
        row({
          step: 'retain',
          file: 'vm1.state.X',
          bytes: 12 * MiB,
          total: 192 * MiB,
          rate: 45.3 * MiB,
          etaSeconds: 4,
        }),
      ),
    ).toBe('2025-01-02T03:04:05.000Z vm1 retain vm1.state.X 12.0 MiB/192.0 MiB (6%) 45.3 MiB/s ETA 0:04');
    expect(formatLine(row({ stage: 'restoring', step: 'restore', action: 'define the domain' }))).toBe(
      '2025-01-02T03:04:05.000Z vm1 restoring/restore define the domain',
    );
  });

  it('formats bytes and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * MiB)).toBe('3.0 GiB');
    expect(formatDuration(65)).toBe('1:05');
    expect(formatDuration(3 * 3600 + 61)).toBe('3:01:01');
    expect(formatAmount({ bytes: 5 * MiB, total: undefined })).toBe('5.0 MiB');
    expect(formatAmount({ bytes: 0, total: 0 })).toBe('0 B/0 B (100%)');
  });

  it('prints a change at once, bytes alone at most every few seconds, the end of a copy always, nothing twice', () => {
    const th = new LineThrottle(3000);
    const r = (at: number, bytes: number, over: Partial<ProgressRow> = {}) =>
      row({ at, file: 'f', bytes, total: 100, ...over });
    expect(th.admit(r(T0, 1))).toBe(true);
    expect(th.admit(r(T0 + 1000, 1))).toBe(false); // unchanged
    expect(th.admit(r(T0 + 1000, 10))).toBe(false); // only bytes, too soon
    expect(th.admit(r(T0 + 3000, 20))).toBe(true);
    expect(th.admit(r(T0 + 3500, 100))).toBe(true); // the copy reached its total
    expect(th.admit(r(T0 + 3600, 0, { file: 'g' }))).toBe(true); // another file
    expect(th.admit(r(T0 + 3700, 0, { file: 'g', waiting: 'x' }))).toBe(true); // now waits
    expect(th.admit(row({ vm: 'vm2', at: T0 + 3700 }))).toBe(true); // another VM
  });
});
