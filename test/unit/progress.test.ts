import { describe, expect, it } from 'vitest';
import { asStepProgress, rateAndEta } from '../../src/domain/progress';

describe('asStepProgress', () => {
  it('keeps the recognised fields of a heartbeat and drops the rest', () => {
    expect(
      asStepProgress({ step: 'retain', file: 'vda', bytes: 10, total: 20, of: 3, action: 'move-file' }),
    ).toEqual({ step: 'retain', action: 'move-file', waiting: undefined, file: 'vda', bytes: 10, total: 20 });
  });

  it('refuses what is not a step heartbeat', () => {
    expect(asStepProgress({ alive: true })).toBeUndefined();
    expect(asStepProgress('merge')).toBeUndefined();
    expect(asStepProgress(null)).toBeUndefined();
  });

  it('drops negative or non-numeric byte counts', () => {
    expect(asStepProgress({ step: 'merge', bytes: -1, total: '9' })).toMatchObject({
      bytes: undefined,
      total: undefined,
    });
  });
});

describe('rateAndEta', () => {
  it('measures the rate over the recent window and the time left at it', () => {
    const samples = [
      { at: 0, bytes: 0 },
      { at: 20_000, bytes: 100 },
      { at: 25_000, bytes: 600 },
      { at: 30_000, bytes: 1100 },
    ];
    expect(rateAndEta(samples, 2100)).toEqual({ rate: 100, etaSeconds: 10 });
  });

  it('tells nothing from a single sample or bytes going backwards (a retried copy)', () => {
    expect(rateAndEta([{ at: 0, bytes: 5 }], 10)).toEqual({});
    expect(
      rateAndEta(
        [
          { at: 0, bytes: 50 },
          { at: 1000, bytes: 10 },
        ],
        100,
      ),
    ).toEqual({});
  });
});
