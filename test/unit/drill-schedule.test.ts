import { describe, expect, it } from 'vitest';
import { ConfigError, maintenanceSchedules } from '../../src/config';

const drillOf = (env: NodeJS.ProcessEnv) => maintenanceSchedules(env).find((s) => s.id === 'vmbackup-drill');

describe('the drill schedule', () => {
  it("drills monthly, at 03:00 on the 1st in the plans' time zone, by default", () => {
    expect(drillOf({ VMBACKUP_TIMEZONE: 'Europe/Zurich' })).toMatchObject({
      workflowType: 'drillFleet',
      cron: '0 3 1 * *',
      timezone: 'Europe/Zurich',
      input: {},
    });
  });

  it('takes its cron from VMBACKUP_DRILL_CRON, off included, and refuses a malformed one', () => {
    expect(drillOf({ VMBACKUP_DRILL_CRON: '30  2 15 * *' })?.cron).toBe('30 2 15 * *');
    expect(drillOf({ VMBACKUP_DRILL_CRON: 'off' })?.cron).toBe('off');
    expect(() => drillOf({ VMBACKUP_DRILL_CRON: 'monthly' })).toThrow(ConfigError);
    expect(() => drillOf({ VMBACKUP_DRILL_CRON: 'monthly' })).toThrow(/VMBACKUP_DRILL_CRON/);
  });
});
