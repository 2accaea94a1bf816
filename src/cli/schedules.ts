import {
  directoryConfig,
  maintenanceSchedules,
  scheduleSyncMinutes,
  scheduleTimezone,
  temporalConfig,
  timingFromEnv,
} from '../config';
import { syncSchedules } from '../schedules/sync';
import { connectClient } from '../temporal/connect';
import { report, type Io } from './io';

type Out = (line: string) => void;

const VERBS: Record<string, string> = {
  created: 'create',
  updated: 'update',
  paused: 'pause',
  unpaused: 'unpause',
  deleted: 'delete',
};

/**
 * One line of the sync's report as a JSON change: `created vmbackup-plan-x: '0 1 * * *' UTC
 * for …` or, dry, `would create vmbackup-plan-x: …` → action, schedule, detail. The line
 * itself is kept as `text`.
 */
export function scheduleChange(line: string): {
  action: string | null;
  schedule: string | null;
  detail: string | null;
  text: string;
} {
  const m = /^(?:would )?(\w+) (\S+?):? (.*)$/.exec(line);
  const verb = m && (VERBS[m[1]!] ?? (Object.values(VERBS).includes(m[1]!) ? m[1]! : undefined));
  if (!m || !verb) return { action: null, schedule: null, detail: null, text: line };
  return { action: verb, schedule: m[2]!, detail: m[3]!, text: line };
}

export async function runScheduleSync(
  cmd: { dryRun: boolean; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  const rep = report(io, cmd.json);
  const client = await connectClient(temporalConfig());
  try {
    const lines = await syncSchedules(client, directoryConfig(), {
      timezone: scheduleTimezone(),
      timing: timingFromEnv(),
      dryRun: cmd.dryRun,
      maintenance: maintenanceSchedules(),
    });
    lines.forEach((l) => rep.text(l));
    const changes = lines.filter((l) => l !== 'no changes').map(scheduleChange);
    rep.result({ dryRun: cmd.dryRun, changed: changes.length > 0, changes });
    return 0;
  } finally {
    await client.connection.close();
  }
}

/**
 * The control worker keeps the schedules in line with the directory: once at start and
 * then every VMBACKUP_SCHEDULE_SYNC_MINUTES. A failed sync is logged and tried again later.
 */
export async function startPeriodicSync(out: Out): Promise<() => void> {
  const minutes = scheduleSyncMinutes();
  if (minutes === 0) return () => undefined;
  const timezone = scheduleTimezone();
  const maintenance = maintenanceSchedules();
  const client = await connectClient(temporalConfig());
  let running = false;
  const sync = async () => {
    if (running) return;
    running = true;
    try {
      const lines = await syncSchedules(client, directoryConfig(), {
        timezone,
        timing: timingFromEnv(),
        dryRun: false,
        maintenance,
      });
      if (lines.join() !== 'no changes') lines.forEach((l) => out(`schedule sync: ${l}`));
    } catch (err) {
      out(`schedule sync failed (will retry): ${(err as Error).message}`);
    } finally {
      running = false;
    }
  };
  void sync();
  const timer = setInterval(() => void sync(), minutes * 60_000);
  return () => {
    clearInterval(timer);
    void client.connection.close();
  };
}
