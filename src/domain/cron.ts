import { BackupError, ErrorCode } from './errors';

/** The plan's cron fields, as the directory holds them (multi-valued, local time on the node). */
export interface CronFields {
  minute: readonly string[];
  hour: readonly string[];
  day: readonly string[];
  month: readonly string[];
  dayOfWeek: readonly string[];
}

const RANGES: Record<keyof CronFields, [number, number, string]> = {
  minute: [0, 59, 'sstCronMinute'],
  hour: [0, 23, 'sstCronHour'],
  day: [1, 31, 'sstCronDay'],
  month: [1, 12, 'sstCronMonth'],
  dayOfWeek: [0, 7, 'sstCronDayOfWeek'],
};

function validToken(token: string, [min, max]: [number, number, string]): boolean {
  const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(token);
  if (!m) return false;
  const inRange = (v: string | undefined) => v === undefined || (Number(v) >= min && Number(v) <= max);
  if (!inRange(m[2]) || !inRange(m[3])) return false;
  if (m[2] !== undefined && m[3] !== undefined && Number(m[3]) < Number(m[2])) return false;
  return m[4] === undefined || Number(m[4]) > 0;
}

/** One field of a cron expression: the values joined by `,`, each checked against the field's range. */
function field(name: keyof CronFields, values: readonly string[]): string {
  const range = RANGES[name];
  const tokens = values.flatMap((v) => v.split(',')).map((t) => t.trim());
  if (tokens.length === 0 || tokens.some((t) => t === '')) {
    throw new BackupError(ErrorCode.missingConfigurationValue, `${range[2]} is missing`);
  }
  for (const t of tokens) {
    if (!validToken(t, range)) {
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `${range[2]}: ${JSON.stringify(t)} is not a valid value (${range[0]}–${range[1]}, *, ranges, lists, steps)`,
      );
    }
  }
  return tokens.join(',');
}

/** `m h dom mon dow`, validated. */
export function cronExpression(fields: CronFields): string {
  return (['minute', 'hour', 'day', 'month', 'dayOfWeek'] as const).map((k) => field(k, fields[k])).join(' ');
}
