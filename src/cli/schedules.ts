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

type Out = (line: string) => void;

export async function runScheduleSync(dryRun: boolean, out: Out): Promise<number> {
  const client = await connectClient(temporalConfig());
  try {
    const lines = await syncSchedules(client, directoryConfig(), {
      timezone: scheduleTimezone(),
      timing: timingFromEnv(),
      dryRun,
      maintenance: maintenanceSchedules(),
    });
    lines.forEach(out);
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
