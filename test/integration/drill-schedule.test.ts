import { describe, expect, it } from 'vitest';
import { maintenanceSchedules, scheduleTimezone, timingFromEnv } from '../../src/config';
import { syncSchedules } from '../../src/schedules/sync';
import { controlDirectory, temporal } from '../support/harness';

describe('the drill schedule', () => {
  it('is created by schedules sync, follows VMBACKUP_DRILL_CRON and is deleted when off', async () => {
    const client = await temporal();
    const handle = client.schedule.getHandle('vmbackup-drill');
    const sync = async (env: NodeJS.ProcessEnv) =>
      (
        await syncSchedules(client, controlDirectory, {
          timezone: scheduleTimezone(),
          timing: timingFromEnv(),
          dryRun: false,
          maintenance: maintenanceSchedules(env).filter((s) => s.id === 'vmbackup-drill'),
        })
      ).filter((l) => l.includes('vmbackup-drill'));
    await handle.delete().catch(() => undefined);
    try {
      expect(await sync({})).toEqual([
        expect.stringMatching(/^created vmbackup-drill: '0 3 1 \* \*' UTC \(restore drill/),
      ]);
      const made = await handle.describe();
      expect(made.action).toMatchObject({ workflowType: 'drillFleet', workflowId: 'vmbackup-drill' });
      expect(made.policies.overlap).toBe('SKIP');
      expect(await sync({})).toEqual([]);
      expect(await sync({ VMBACKUP_DRILL_CRON: '0 4 15 * *' })).toEqual([
        expect.stringMatching(/^updated vmbackup-drill: '0 4 15 \* \*'/),
      ]);
      expect(await sync({ VMBACKUP_DRILL_CRON: 'off' })).toEqual(['deleted vmbackup-drill (turned off)']);
      await expect(handle.describe()).rejects.toThrow();
    } finally {
      await handle.delete().catch(() => undefined);
    }
  }, 60_000);
});
