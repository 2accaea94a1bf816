import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { barRenderer } from '../../src/cli/progress-render';
import type { ProgressRow } from '../../src/cli/progress-view';
import { drawings } from '../support/terminal';

/** A terminal of 160 columns that keeps what is drawn on it. */
function terminal(): { stream: NodeJS.WriteStream; drawn: () => string } {
  const t = new PassThrough();
  let out = '';
  t.on('data', (d: Buffer) => (out += d.toString('utf8')));
  Object.assign(t, { isTTY: true, columns: 160, rows: 40, cursorTo: undefined });
  return { stream: t as unknown as NodeJS.WriteStream, drawn: () => out };
}

const lastBar = (drawn: string) =>
  drawings(drawn)
    .filter((l) => l.startsWith('vm1 ['))
    .at(-1);

const row = (over: Partial<ProgressRow>): ProgressRow => ({
  vm: 'vm1',
  at: 0,
  state: 'running',
  stage: 'snapshot',
  ...over,
});

describe('progress bars on a terminal', () => {
  it('fills the bar with the bytes of the file being copied', () => {
    const { stream, drawn } = terminal();
    const r = barRenderer(stream, ['vm1']);
    r.show([row({ step: 'retain', file: 'a.state', bytes: 512, total: 1024 })]);
    r.stop();
    expect(lastBar(drawn())).toMatch(
      /^vm1 \[\u2588{12}\u2591{12}\] snapshot\/retain a\.state 512 B\/1\.0 KiB \(50%\)/u,
    );
  });

  it('draws the bar full once the workflow says finished, even with a file half-copied left in the heartbeat', () => {
    const { stream, drawn } = terminal();
    const r = barRenderer(stream, ['vm1']);
    r.show([row({ stage: 'finished', file: 'a.state', bytes: 10, total: 1024 })]);
    r.stop();
    expect(lastBar(drawn())).toMatch(/^vm1 \[\u2588{24}\] finished/u);
  });

  it('draws a done run with no byte counts full and a pending one empty', () => {
    const { stream, drawn } = terminal();
    const r = barRenderer(stream, ['vm1', 'vm2']);
    r.show([row({ state: 'done', stage: 'finished' })]);
    r.stop();
    expect(lastBar(drawn())).toMatch(/^vm1 \[\u2588{24}\]/u);
    expect(drawn()).toMatch(/vm2 \[\u2591{24}\] pending/u);
  });
});
