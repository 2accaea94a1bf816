/**
 * What a node activity's heartbeat details say, one shape for every step, so that the CLI
 * (through `describe` of the running workflow) can show stage, bytes, rate and ETA.
 */
export interface StepProgress {
  /** `snapshot`, `merge`, `retain`, `unretain`, `restore`, `verify`, `drill`, `export`, … */
  step: string;
  /** The action being taken now, in words. */
  action?: string | undefined;
  /** Why the step waits (a libvirt job running, the directory away, …). */
  waiting?: string | undefined;
  /** The disk target or file name the bytes belong to. */
  file?: string | undefined;
  /** Bytes done of `total` of `file` (for a merge: of every disk still pulling), when the step moves data. */
  bytes?: number | undefined;
  total?: number | undefined;
}

/** Heartbeat details as sent by an older worker or by hand: only what is recognisable is kept. */
export function asStepProgress(details: unknown): StepProgress | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  const d = details as Record<string, unknown>;
  if (typeof d['step'] !== 'string') return undefined;
  const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  const num = (k: string) =>
    typeof d[k] === 'number' && Number.isFinite(d[k]) && (d[k] as number) >= 0 ? (d[k] as number) : undefined;
  return {
    step: d['step'],
    action: str('action'),
    waiting: str('waiting'),
    file: str('file'),
    bytes: num('bytes'),
    total: num('total'),
  };
}

export interface ProgressSample {
  /** ms since the epoch */
  at: number;
  bytes: number;
}

/**
 * Rate (bytes/s) over the samples of the last `windowMs`, and the seconds left at that rate;
 * undefined while there is too little to tell.
 */
export function rateAndEta(
  samples: readonly ProgressSample[],
  total: number | undefined,
  windowMs = 10_000,
): { rate?: number | undefined; etaSeconds?: number | undefined } {
  const last = samples[samples.length - 1];
  if (!last) return {};
  const recent = samples.filter((s) => s.at >= last.at - windowMs);
  const first = recent[0]!;
  const dt = (last.at - first.at) / 1000;
  if (dt <= 0 || last.bytes < first.bytes) return {};
  const rate = (last.bytes - first.bytes) / dt;
  if (rate <= 0) return { rate };
  return { rate, etaSeconds: total !== undefined ? Math.max(0, (total - last.bytes) / rate) : undefined };
}
