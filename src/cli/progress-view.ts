import { asStepProgress, rateAndEta, type ProgressSample, type StepProgress } from '../domain/progress';

/**
 * The pure half of live progress: what the Temporal reading (progress-source) found about a
 * VM's run, turned into one row per VM with stage, bytes, rate and ETA, and that row as a
 * plain line. No I/O here, so that it is unit-tested as it is.
 */

/** One pending activity of a run, its heartbeat details decoded (not yet interpreted). */
export interface ActivityReading {
  activityType: string;
  attempt: number;
  /** The latest heartbeat details, decoded; undefined before the first heartbeat. */
  details?: unknown;
  /** The last attempt's failure message, when the activity is being retried. */
  lastFailure?: string | undefined;
}

/** What one poll found about one VM's run. */
export interface RunReading {
  vm: string;
  /** ms since the epoch, when it was read */
  at: number;
  /**
   * `pending`: not started yet (a multi-VM run's child, or an older run still under the ID);
   * `running`; `completed` / `failed`: the run ended (failed covers terminated, timed out, …).
   */
  status: 'pending' | 'running' | 'completed' | 'failed';
  /** The workflow's own stage (`backupProgress` / `restoreStatus` query), when it answered. */
  stage?: string | undefined;
  activities: ActivityReading[];
}

export type RowState = 'pending' | 'running' | 'done' | 'failed';

/** What one VM's line or bar shows. */
export interface ProgressRow {
  vm: string;
  at: number;
  state: RowState;
  /** The workflow's stage, or the running step when the workflow did not say. */
  stage: string;
  /** The node step reporting (`merge`, `retain`, `unretain-large`, …). */
  step?: string | undefined;
  action?: string | undefined;
  waiting?: string | undefined;
  file?: string | undefined;
  bytes?: number | undefined;
  total?: number | undefined;
  /** bytes/s */
  rate?: number | undefined;
  etaSeconds?: number | undefined;
  /** The attempt of the reporting activity, when above 1. */
  attempt?: number | undefined;
  lastFailure?: string | undefined;
}

/** The activity whose progress a row shows: the one that reports a step, the latest attempt first. */
function reporting(
  activities: readonly ActivityReading[],
): { a: ActivityReading; p?: StepProgress } | undefined {
  let best: { a: ActivityReading; p?: StepProgress } | undefined;
  for (const a of activities) {
    const p = asStepProgress(a.details);
    if (!best || (p && !best.p)) best = p ? { a, p } : { a };
  }
  return best;
}

const rowKey = (r: ProgressRow) => `${r.state}|${r.stage}|${r.step ?? ''}|${r.file ?? ''}|${r.attempt ?? 1}`;
const bytesKey = (r: ProgressRow) => `${r.step ?? ''}|${r.file ?? ''}|${r.attempt ?? 1}`;

/**
 * Turns successive readings of each VM's run into rows: keeps the byte samples of the step
 * being reported (per step, file and attempt) for rate and ETA. `update` returns the rows to
 * show for this reading: usually one; two when the reading shows that the previous file or
 * step finished between two polls (the same activity moved on, or the stage went on): then a
 * row with its bytes at its total comes first, so that a finished copy is seen finished.
 */
export class ProgressTracker {
  private readonly samples = new Map<string, { key: string; list: ProgressSample[] }>();
  private readonly last = new Map<string, ProgressRow>();

  constructor(private readonly windowMs = 10_000) {}

  update(reading: RunReading): ProgressRow[] {
    const row = this.row(reading);
    const previous = this.last.get(reading.vm);
    this.last.set(reading.vm, row);
    const out: ProgressRow[] = [];
    if (
      previous &&
      previous.total !== undefined &&
      previous.bytes !== undefined &&
      previous.bytes < previous.total &&
      row.state !== 'failed' &&
      (row.attempt ?? 1) === (previous.attempt ?? 1) &&
      bytesKey(previous) !== bytesKey(row)
    ) {
      out.push({ ...previous, at: row.at, bytes: previous.total, etaSeconds: 0 });
    }
    out.push(row);
    return out;
  }

  private row(r: RunReading): ProgressRow {
    const state: RowState =
      r.status === 'completed'
        ? 'done'
        : r.status === 'failed'
          ? 'failed'
          : r.status === 'pending'
            ? 'pending'
            : 'running';
    const found = state === 'running' ? reporting(r.activities) : undefined;
    const p = found?.p;
    const ended: Record<RowState, string | undefined> = {
      done: 'finished',
      failed: 'failed',
      pending: 'pending',
      running: undefined,
    };
    // A workflow without a stage query (restore --as) shows the step or the activity running.
    const stage = r.stage ?? ended[state] ?? p?.step ?? found?.a.activityType ?? 'running';
    const row: ProgressRow = {
      vm: r.vm,
      at: r.at,
      state,
      stage,
      step: p?.step,
      action: p?.action,
      waiting: p?.waiting,
      file: p?.file,
      bytes: p?.bytes,
      total: p?.total,
      attempt: found && found.a.attempt > 1 ? found.a.attempt : undefined,
      lastFailure: found?.a.lastFailure,
    };
    if (row.bytes === undefined) {
      this.samples.delete(r.vm);
      return row;
    }
    const key = bytesKey(row);
    let s = this.samples.get(r.vm);
    if (!s || s.key !== key || (s.list.length && s.list[s.list.length - 1]!.bytes > row.bytes)) {
      s = { key, list: [] };
      this.samples.set(r.vm, s);
    }
    s.list.push({ at: r.at, bytes: row.bytes });
    s.list = s.list.filter((x) => x.at >= r.at - this.windowMs);
    const { rate, etaSeconds } = rateAndEta(s.list, row.total, this.windowMs);
    return { ...row, rate, etaSeconds };
  }
}

/**
 * Which rows a plain (non-TTY) output prints: a row whose stage, step, file, state or
 * waiting changed at once; one whose only bytes moved at most every `everyMs`; nothing
 * when nothing changed.
 */
export class LineThrottle {
  private readonly printed = new Map<string, { key: string; line: string; at: number }>();

  constructor(private readonly everyMs = 3000) {}

  admit(row: ProgressRow): boolean {
    const key = `${rowKey(row)}|${row.waiting ?? ''}|${row.action ?? ''}`;
    const line = `${key}|${row.bytes ?? ''}|${row.total ?? ''}`;
    const before = this.printed.get(row.vm);
    const finishedCopy = row.total !== undefined && row.bytes === row.total;
    if (before) {
      if (before.line === line) return false;
      if (before.key === key && !finishedCopy && row.at - before.at < this.everyMs) return false;
    }
    this.printed.set(row.vm, { key, line, at: row.at });
    return true;
  }
}

const KiB = 1024;

/** Bytes the way operators read them: B, KiB, MiB, GiB, TiB with one decimal. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= KiB && i < units.length - 1) {
    v /= KiB;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Seconds as h:mm:ss or m:ss. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** `12.0 MiB/192.0 MiB (6%)`, `12.0 MiB` without a total, or '' without bytes. */
export function formatAmount(row: Pick<ProgressRow, 'bytes' | 'total'>): string {
  if (row.bytes === undefined) return '';
  if (row.total === undefined) return formatBytes(row.bytes);
  const pct = row.total > 0 ? Math.floor((Math.min(row.bytes, row.total) / row.total) * 100) : 100;
  return `${formatBytes(row.bytes)}/${formatBytes(row.total)} (${pct}%)`;
}

/** `45.3 MiB/s ETA 0:04`, or the parts known. */
export function formatRate(row: Pick<ProgressRow, 'rate' | 'etaSeconds'>): string {
  return [
    row.rate !== undefined ? `${formatBytes(row.rate)}/s` : '',
    row.etaSeconds !== undefined ? `ETA ${formatDuration(row.etaSeconds)}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/** What the step does or waits for, and a retry, in words. */
export function formatNote(row: ProgressRow): string {
  return [
    row.waiting ? `waiting: ${row.waiting}` : row.action && row.bytes === undefined ? row.action : '',
    row.attempt ? `attempt ${row.attempt}${row.lastFailure ? ` (last: ${row.lastFailure})` : ''}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

/** The stage with the step when they differ: `retain`, `restoring/restore`, … */
export function formatStage(row: ProgressRow): string {
  return row.step && row.step !== row.stage ? `${row.stage}/${row.step}` : row.stage;
}

/**
 * One plain progress line: ISO time, VM, stage, file, bytes of total, rate and ETA, note.
 * `2025-01-02T03:04:05.000Z vm1 retain vm1.state.X 12.0 MiB/192.0 MiB (6%) 45.3 MiB/s ETA 0:04`
 */
export function formatLine(row: ProgressRow): string {
  return [
    new Date(row.at).toISOString(),
    row.vm,
    formatStage(row),
    row.file ?? '',
    formatAmount(row),
    formatRate(row),
    formatNote(row),
  ]
    .filter(Boolean)
    .join(' ');
}
