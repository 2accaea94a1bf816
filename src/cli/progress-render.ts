import cliProgress from 'cli-progress';
import {
  formatAmount,
  formatLine,
  formatNote,
  formatRate,
  formatStage,
  LineThrottle,
  type ProgressRow,
} from './progress-view';

/** Shows progress rows: bars on a terminal, timestamped lines elsewhere. */
export interface ProgressRenderer {
  show(rows: readonly ProgressRow[]): void;
  stop(): void;
}

/** Plain lines (pipe, CI): printed when something changed, bytes alone at most every `everyMs`. */
export function lineRenderer(write: (line: string) => void, everyMs = 3000): ProgressRenderer {
  const throttle = new LineThrottle(everyMs);
  return {
    show: (rows) => rows.filter((r) => throttle.admit(r)).forEach((r) => write(formatLine(r))),
    stop: () => undefined,
  };
}

/** One bar per VM (in the order of `vms`), with the stage, file, bytes, rate and ETA beside it. */
export function barRenderer(stream: NodeJS.WriteStream, vms: readonly string[]): ProgressRenderer {
  const width = Math.max(...vms.map((v) => v.length), 2);
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: '{vm} [{bar}] {stage} {detail}',
      barsize: 24,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      autopadding: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  const payload = (vm: string, r?: ProgressRow) => ({
    vm: vm.padEnd(width),
    stage: r ? formatStage(r) : 'pending',
    detail: r ? [r.file ?? '', formatAmount(r), formatRate(r), formatNote(r)].filter(Boolean).join(' ') : '',
  });
  for (const vm of vms) bars.set(vm, multi.create(1, 0, payload(vm)));
  return {
    show(rows) {
      for (const r of rows) {
        let bar = bars.get(r.vm);
        if (!bar) {
          bar = multi.create(1, 0, payload(r.vm));
          bars.set(r.vm, bar);
        }
        const total = r.total && r.total > 0 ? r.total : 1;
        // The workflow says `finished` a moment before its run completes: full from then on.
        const ended = r.state === 'done' || r.stage === 'finished';
        const value = ended ? total : r.total ? Math.min(r.bytes ?? 0, r.total) : 0;
        bar.setTotal(total);
        bar.update(value, payload(r.vm, r));
      }
    },
    stop: () => multi.stop(),
  };
}

/** Bars when `stream` is a terminal, lines otherwise. */
export function progressRenderer(stream: NodeJS.WriteStream, vms: readonly string[]): ProgressRenderer {
  return stream.isTTY ? barRenderer(stream, vms) : lineRenderer((line) => stream.write(`${line}\n`));
}
