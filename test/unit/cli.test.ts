import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program';
import { scheduleChange } from '../../src/cli/schedules';

/** Runs the command line in-process, capturing stdout and stderr: only parsing, no connection. */
async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

const COMMANDS = [
  'worker',
  'schedules',
  'codec-server',
  'backup',
  'watch',
  'restore',
  'status',
  'backups',
  'verify',
  'export',
  'drill',
];

describe('vmbackup command line', () => {
  it('--help lists every subcommand, on stdout, exit 0', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(r.stdout).toContain('TEMPORAL_ADDRESS');
    expect(r.stderr).toBe('');
  });

  it('no command at all prints the usage and exits 2', async () => {
    const r = await cli();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: vmbackup');
  });

  it.each([
    [['backup'], /--wait/],
    [['backup'], /--json/],
    [['backup'], /--run-date <YYYYMMDDThhmmssZ>/],
    [['backup'], /--no-progress/],
    [['restore'], /--as <new-name>/],
    [['restore'], /--decision-timeout <seconds>/],
    [['restore'], /decide \[options\] <vm>/],
    [['restore', 'decide'], /--wait/],
    [['restore', 'decide'], /--all-backup/],
    [['restore', 'status'], /--json/],
    [['worker', 'node'], /--node <name>/],
    [['schedules', 'sync'], /--dry-run/],
    [['verify'], /--all/],
    [['export'], /--disk <target>/],
    [['watch'], /multi-VM run/],
    [['codec-server'], /--port <n>/],
  ])('generated help of %j shows %s', async (cmd, pattern) => {
    const r = await cli(...cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(pattern);
    // `help <command>` says the same (one level: `help restore` is restore's help)
    if (cmd.length === 1) expect((await cli('help', ...cmd)).stdout).toBe(r.stdout);
  });

  it('keeps the long descriptions', async () => {
    expect((await cli('verify', '--help')).stdout).toMatch(/re-read once against the size and SHA-256/);
    expect((await cli('status', '--help')).stdout).toMatch(/Nagios\/Icinga/);
    expect((await cli('drill', '--help')).stdout).toMatch(/vmbackup-drill/);
  });

  it.each([
    [['backup', 'vm1', '--bogus'], /unknown option '--bogus'/],
    [['backup'], /missing required argument 'vm'/],
    [['backups'], /missing required argument 'vm'/],
    [['backups', 'a', 'b'], /too many arguments/],
    [['status', 'extra'], /too many arguments/],
    [['nosuch'], /unknown command 'nosuch'/],
    [['worker', 'node'], /required option '--node <name>' not specified/],
    [['worker', 'elsewhere'], /unknown command 'elsewhere'/],
    [['export', 'vm1', '--disk', 'vda'], /required option '--to <file>'/],
    [
      ['verify', 'vm1', '--all', '--backup', '20250101T000000Z'],
      /'--all' cannot be used with option '--backup/,
    ],
    [['restore', 'vm1', '--decision-timeout', '0'], /must be a positive number/],
    [['restore', 'vm1', '--as', 'vm2', '--decision-timeout', '5'], /cannot be used with/],
    [['restore', 'decide', 'vm1', '--all-backup', '--all-live'], /cannot be used with/],
    [['restore', 'decide'], /missing required argument 'vm'/],
    [['schedules', 'sync', '--wet-run'], /unknown option '--wet-run'/],
  ])('refuses %j with exit 2 and a clear message, before connecting', async (argv, message) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('refuses an invalid VM name with exit 2 before connecting', async () => {
    const r = await cli('watch', 'evil,vm=x');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid VM name "evil,vm=x"');
  });
});

describe('schedule sync lines as JSON changes', () => {
  it('reads done and dry-run lines, and keeps any other as text', () => {
    expect(scheduleChange("created vmbackup-plan-x: '0 1 * * *' UTC for ou=backup")).toEqual({
      action: 'create',
      schedule: 'vmbackup-plan-x',
      detail: "'0 1 * * *' UTC for ou=backup",
      text: "created vmbackup-plan-x: '0 1 * * *' UTC for ou=backup",
    });
    expect(scheduleChange('would delete vmbackup-plan-y (its plan is gone)')).toMatchObject({
      action: 'delete',
      schedule: 'vmbackup-plan-y',
      detail: '(its plan is gone)',
    });
    expect(scheduleChange('paused vmbackup-plan-z (sstCronActive: FALSE)')).toMatchObject({
      action: 'pause',
    });
    expect(scheduleChange('something else')).toMatchObject({ action: null, text: 'something else' });
  });
});
