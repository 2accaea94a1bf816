import { describe, expect, it } from 'vitest';
import { vmStatuses, type VmFacts } from '../../src/domain/status';

const NOW = new Date('2026-12-02T08:00:00Z');
const run = (runDate: string, over: Partial<VmFacts['runs'][number]> = {}) => ({
  runDate,
  mode: 'finished',
  returnValue: 0,
  complete: true,
  ...over,
});
const vm = (over: Partial<VmFacts>): VmFacts => ({
  vm: 'vm1',
  node: 'n1',
  excluded: false,
  scheduleId: 'vmbackup-plan-global',
  plan: { level: 'global', mode: 'live' },
  runs: [run('20261202T030000Z')],
  ...over,
});
const daily = { 'vmbackup-plan-global': ['2026-12-03T03:00:00.000Z', '2026-12-04T03:00:00.000Z'] };
const facts = { nextRuns: daily, nodesWithWorker: ['n1'] };
const one = (v: VmFacts, f = facts) => vmStatuses([v], f, NOW)[0]!;

describe('vmStatuses', () => {
  it('is fine with a good backup within its schedule period, and says when it runs next', () => {
    expect(one(vm({}))).toMatchObject({
      ok: true,
      reasons: [],
      lastBackup: { runDate: '20261202T030000Z', ageHours: 5 },
      lastRun: { outcome: 'finished' },
      nextRun: '2026-12-03T03:00:00.000Z',
    });
  });

  it('needs attention when the last good backup is older than the period and two hours', () => {
    expect(one(vm({ runs: [run('20261130T030000Z')] })).reasons).toEqual([
      'last good backup 20261130T030000Z is 53 h old',
    ]);
  });

  it('takes the period from the schedule: a weekly plan tolerates a five-day-old backup', () => {
    const weekly = {
      ...facts,
      nextRuns: { 'vmbackup-plan-global': ['2026-12-06T03:00:00.000Z', '2026-12-13T03:00:00.000Z'] },
    };
    expect(one(vm({ runs: [run('20261127T030000Z')] }), weekly).ok).toBe(true);
  });

  it('names a stale backup, a failed last run, a failed verification, a nightly skip and a missing worker', () => {
    const s = one(
      vm({
        node: 'n2',
        runs: [
          run('20261201T030000Z', {
            verification: { outcome: 'failed', checkedAt: '2026-12-01T13:30:00Z', summary: 'x: SHA-256' },
          }),
          run('20261202T030000Z', { mode: 'merging', returnValue: 11, complete: false }),
        ],
        lastRun: { runDate: '20261202T030000Z', mode: 'merging', returnValue: 11, complete: false },
      }),
    );
    expect(s.ok).toBe(false);
    expect(s.lastRun).toEqual({ runDate: '20261202T030000Z', outcome: 'failed', returnValue: 11 });
    expect(s.verification).toEqual({
      outcome: 'failed',
      checkedAt: '2026-12-01T13:30:00Z',
      summary: 'x: SHA-256',
    });
    expect(s.reasons).toEqual([
      'last good backup 20261201T030000Z is 29 h old',
      'newest backup 20261201T030000Z FAILED verification',
      'last run 20261202T030000Z failed (merging, return value 11)',
      expect.stringMatching(
        /^skipped by the nightly run: last backup 20261202T030000Z did not finish cleanly/,
      ),
      'no worker on node n2',
    ]);
  });

  it('counts a run still going as neither failed nor a problem', () => {
    const s = one(
      vm({
        runs: [
          run('20261202T030000Z'),
          run('20261202T070000Z', { mode: 'merging', returnValue: undefined, complete: false }),
        ],
      }),
    );
    expect(s).toMatchObject({ ok: true, lastRun: { outcome: 'running' } });
  });

  it('never asks for backups of an excluded VM or one no schedule backs up', () => {
    expect(one(vm({ excluded: true, runs: [] }))).toMatchObject({ ok: true, schedule: null, nextRun: null });
    expect(one(vm({ scheduleId: undefined, runs: [] }))).toMatchObject({ ok: true, schedule: null });
  });

  it('needs attention for a VM never backed up, or whose directory data is unusable', () => {
    expect(one(vm({ runs: [] })).reasons).toEqual(['never backed up']);
    expect(
      one(vm({ scheduleId: undefined, runs: [], problem: 'cannot be backed up: no disk' })).reasons,
    ).toEqual(['cannot be backed up: no disk']);
  });
});
