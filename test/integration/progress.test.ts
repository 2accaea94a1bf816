import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureRamBlob, removeRamBlob } from '../../src/dev/guest-ram';
import { repoRoot } from '../support/dev-env';
import { createVm, guestWrite, MiB, startBackup, virsh } from '../support/harness';
import { useTestNode } from '../support/lifecycle';
import { CSI, drawings, screenLines } from '../support/terminal';

const NODE = 'vmbt-node-progress';
const VM = 'vmbt-progress';
const OTHER = 'vmbt-progress-other';
// The node reads its files at 256 MiB/s (VMBACKUP_READ_MIB_PER_SECOND, as an operator sets it
// to leave the disks to the guests): the 1 GiB state file's copies and hashes take seconds
// each, so that one-second polls see them under way however fast this machine's disks are.
const node = useTestNode(NODE, { VMBACKUP_READ_MIB_PER_SECOND: '256' });
node.vms.push(VM, OTHER);
const BLOB = 'vmbt-progress-1024m';
afterAll(() => removeRamBlob(BLOB).catch(() => undefined));

/** The CLI as operators run it, in a pipe (not a TTY): progress comes as plain lines on stderr. */
function cli(env: NodeJS.ProcessEnv, ...args: string[]) {
  const child = execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, ...args], {
    reject: false,
    env: { ...process.env, ...env },
  });
  const lines: Array<{ line: string; at: number }> = [];
  let partial = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    for (const line of parts) lines.push({ line, at: Date.now() });
  });
  return { child, lines };
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: MiB, GiB: 1024 * MiB };
const amount = (n: string, unit: string) => Number(n) * UNITS[unit]!;

interface Line {
  at: string;
  stage: string;
  file: string;
  bytes: number;
  total: number;
  percent: number;
}

/** `<ISO time> <vm> <stage> <file> <n unit>/<n unit> (<p>%) …`: a progress line with bytes. */
function parse(line: string, vm = VM): Line | undefined {
  const m =
    /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) (\S+) (\S+) ([\d.]+) (B|KiB|MiB|GiB)\/([\d.]+) (B|KiB|MiB|GiB) \((\d+)%\)/.exec(
      line,
    );
  if (!m || m[2] !== vm) return undefined;
  return {
    at: m[1]!,
    stage: m[3]!,
    file: m[4]!,
    bytes: amount(m[5]!, m[6]!),
    total: amount(m[7]!, m[8]!),
    percent: Number(m[9]),
  };
}

describe('live progress of a backup', () => {
  it('backup --wait in a pipe prints timestamped progress lines (stage, action, bytes of total) while it runs, then one JSON document', async () => {
    // RAM full of data (save mode): the state file's retain takes a moment.
    const blob = await ensureRamBlob(BLOB, 1024 * MiB);
    await createVm({ name: VM, node: NODE, disks: 1, memoryMiB: 1280, ramData: blob, mode: 'save' });
    await guestWrite(VM, 0, { pattern: 0x5a, offset: 0, length: 4 * MiB });

    const { child, lines } = cli({}, 'backup', VM, '--wait', '--json');
    const r = await child;
    const ended = Date.now();
    const all = lines.map((l) => l.line).join('\n');
    expect(r.exitCode, `${r.stdout}\n${all}`).toBe(0);

    // stdout: exactly one JSON document
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      workflowId: string;
      results: Array<{ vm: string; outcome: string; files: string[]; backupDir: string }>;
    };
    expect(doc).toMatchObject({ ok: true, workflowId: `vm/${VM}`, started: true });
    expect(doc.results).toHaveLength(1);
    expect(doc.results[0]).toMatchObject({ vm: VM, outcome: 'backed-up' });
    const stateFile = doc.results[0]!.files.find((f) => f.includes('.state.'))!;
    expect(stateFile).toBeDefined();

    // stderr: the start, then plain progress lines (ISO time, VM, stage, …) as the stages go
    expect(all).toContain(`started vm/${VM}`);
    const progress = lines.filter((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l.line));
    expect(progress.length, all).toBeGreaterThan(2);
    const stages = progress.map((l) => l.line.split(' ')[2]);
    expect(stages, all).toContain('snapshot');
    expect(stages, all).toContain('retain');
    expect(stages.at(-1), all).toBe('finished');
    // printed during the run, not all at its end
    expect(progress[0]!.at, all).toBeLessThan(ended - 2000);

    // Bytes (StepProgress `{step, file, bytes, total}`), per file, as far as a poll saw them:
    // never decreasing, and reaching the file's total (a file the step moved on from is shown
    // done).
    const withBytes = progress.map((l) => parse(l.line)).filter((l): l is Line => !!l);
    // Per stage: the state file is copied in the snapshot, then hashed again in the retain.
    const byFile = new Map<string, Line[]>();
    for (const l of withBytes)
      byFile.set(`${l.stage} ${l.file}`, [...(byFile.get(`${l.stage} ${l.file}`) ?? []), l]);
    for (const [file, seen] of byFile) {
      const percents = seen.map((l) => l.percent);
      expect(percents, `${file}\n${all}`).toEqual([...percents].sort((a, b) => a - b));
      expect(seen.at(-1)!.percent, `${file}\n${all}`).toBe(100);
      expect(seen.at(-1)!.bytes, file).toBe(seen.at(-1)!.total);
    }
    // The state file (most of the backup's bytes) is seen on its way off the RAM disk in the
    // snapshot and as the retain hashes it again: its bytes rise to its size in each.
    const state = withBytes.filter((l) => l.file === stateFile);
    expect(state[0]!.total).toBeGreaterThan(1000 * MiB);
    for (const stage of ['snapshot', 'retain']) {
      const seen = state.filter((l) => l.stage === stage);
      expect(
        seen.some((l) => l.bytes > 0 && l.bytes < l.total),
        `${stage}\n${all}`,
      ).toBe(true);
    }
    expect(
      state.every((l) => ['snapshot', 'retain'].includes(l.stage)),
      all,
    ).toBe(true);
  }, 300_000);

  it('watch attaches to a running backup, shows its progress and exits 0 when it finished', async () => {
    const handle = await startBackup(VM);
    const { child, lines } = cli({}, 'watch', VM);
    const r = await child;
    const all = lines.map((l) => l.line).join('\n');
    expect(r.exitCode, `${r.stdout}\n${all}`).toBe(0);
    expect(all).toContain(`watching backupVm vm/${VM}`);
    const progress = lines.filter((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z vmbt-progress /.test(l.line));
    expect(progress.length, all).toBeGreaterThan(1);
    expect(progress.at(-1)!.line.split(' ')[2], all).toBe('finished');
    expect(r.stdout).toMatch(new RegExp(`^${VM}: backed up on ${NODE} to `));
    await handle.result();
  }, 300_000);

  it("backup --wait on a terminal draws a bar that fills with the state file's bytes, ends full at finished, restores the cursor, then prints the result", async () => {
    // A real pseudo-terminal (test/support/on-terminal.py): the CLI sees a TTY and draws bars.
    const r = await execa(
      'python3',
      [
        `${repoRoot}test/support/on-terminal.py`,
        process.execPath,
        `${repoRoot}bin/vmbackup.mjs`,
        'backup',
        VM,
        '--wait',
      ],
      { reject: false },
    );
    const raw = r.stdout;
    expect(r.exitCode, raw).toBe(0);
    const frames = drawings(raw).filter((f) => f.startsWith(`${VM} [`));
    const bar = (f: string) => /^\S+ \[(\u2588*)(\u2591*)\] (.*)/u.exec(f);
    expect(frames.length, raw).toBeGreaterThan(3);
    expect(
      frames.every((f) => {
        const m = bar(f);
        return !!m && m[1]!.length + m[2]!.length === 24;
      }),
      raw,
    ).toBe(true);
    // Under way: the bar partly filled while the 1 GiB state file moves, its bytes beside it.
    const moving = frames.filter((f) => {
      const m = bar(f)!;
      return (
        m[1]!.length > 0 &&
        m[2]!.length > 0 &&
        /\.state\.\S+ [\d.]+ (B|KiB|MiB|GiB)\/1\.0 GiB \(\d+%\)/.test(m[3]!)
      );
    });
    expect(moving.length, raw).toBeGreaterThan(0);
    const finished = frames.filter((f) => bar(f)![3]!.startsWith('finished'));
    expect(finished.length, raw).toBeGreaterThan(0);
    expect(
      finished.every((f) => /^\S+ \[\u2588{24}\] finished/u.test(f)),
      raw,
    ).toBe(true);
    expect(frames.at(-1), raw).toBe(finished.at(-1));
    // The cursor hidden while drawing comes back.
    expect(raw.lastIndexOf(`${CSI}?25h`), raw).toBeGreaterThan(raw.indexOf(`${CSI}?25l`));
    // The last thing drawn is the full bar at finished (cli-progress may draw it once more as
    // it stops), and the result comes on its own line below it.
    const screen = screenLines(raw);
    expect(screen.at(-2), raw).toMatch(/\[\u2588{24}\] finished$/u);
    expect(screen.at(-1), raw).toMatch(new RegExp(`^${VM}: backed up on ${NODE} to `));
  }, 300_000);

  it('restore decide --wait shows the restore coming back, the state file bytes rising to its size, and exits 0 restored', async () => {
    // Off already: the restore does not wait a minute for a guest without ACPI to shut down.
    await virsh.destroy(VM);
    const start = cli({}, 'restore', VM);
    const started = await start.child;
    expect(started.exitCode, started.stderr).toBe(0);
    const { child, lines } = cli({}, 'restore', 'decide', VM, '--all-backup', '--wait');
    const r = await child;
    const all = lines.map((l) => l.line).join('\n');
    expect(r.exitCode, `${r.stdout}\n${all}`).toBe(0);
    const progress = lines.filter((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l.line));
    const stages = progress.map((l) => l.line.split(' ')[2]);
    expect(stages, all).toContain('unretaining-large-files');
    expect(stages.at(-1), all).toBe('finished');
    const state = progress
      .map((l) => parse(l.line))
      .filter((l): l is Line => !!l && l.file.includes('.state.'));
    expect(
      state.some((l) => l.bytes > 0 && l.bytes < l.total),
      all,
    ).toBe(true);
    expect(state.at(-1)!.bytes, all).toBe(state.at(-1)!.total);
  }, 300_000);

  it('a multi-VM backup --wait shows a line per VM as each goes through its stages to finished', async () => {
    await createVm({ name: OTHER, node: NODE, disks: 1, memoryMiB: 64, mode: 'save' });
    const { child, lines } = cli({}, 'backup', VM, OTHER, '--wait');
    const r = await child;
    const all = lines.map((l) => l.line).join('\n');
    expect(r.exitCode, `${r.stdout}\n${all}`).toBe(0);
    for (const vm of [VM, OTHER]) {
      const mine = lines.filter((l) => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${vm} `).test(l.line));
      const stages = mine.map((l) => l.line.split(' ')[2]);
      expect(stages, `${vm}\n${all}`).toContain('snapshot');
      expect(stages.at(-1), `${vm}\n${all}`).toBe('finished');
      expect(r.stdout).toMatch(new RegExp(`^${vm}: backed up on ${NODE} to `, 'm'));
    }
  }, 300_000);

  it('watch says so and exits 2 when no run is going', async () => {
    const { child } = cli({}, 'watch', VM);
    const r = await child;
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`no run of ${VM} is going: the last one \\(backupVm\\) ended completed`),
    );
    expect(r.stdout).toBe('');
  });
});
