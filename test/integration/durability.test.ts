import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/hypervisor/run';
import { repoRoot } from '../support/dev-env';
import { DURABILITY_STEPS, type DurabilityStep } from '../support/durability-ops';

// The durable file helpers are checked where a power loss would hit them: in the order of
// the system calls they make. test/support/durability-ops.ts runs each helper once under
// strace; the trace must show every rename, unlink and mkdir followed, before the helper
// returns, by an fsync of each directory it changed, and copied data fsynced before the
// rename that makes it visible.

const OPS_SCRIPT = fileURLToPath(new URL('../support/durability-ops.ts', import.meta.url));
const TRACED = [
  'openat',
  'fsync',
  'fdatasync',
  'rename',
  'renameat',
  'renameat2',
  'unlink',
  'unlinkat',
  'mkdir',
  'mkdirat',
  'close',
  // The step markers (fs.accessSync of a path that does not exist).
  'access',
  'faccessat',
  'faccessat2',
  // Tells which process is cp.
  'execve',
];

/** One system call; `seq`/`done` are the trace lines of its start and its result. */
interface Call {
  seq: number;
  done: number;
  pid: number;
  name: string;
  args: string;
  ret: number;
  /** With -y, the path of the fd a call returned (openat). */
  retPath: string | undefined;
}

type OpKind = 'rename' | 'unlink' | 'mkdir' | 'fsync' | 'write-open' | 'exec' | 'marker';
interface Op {
  kind: OpKind;
  /** rename: [from, to]; fsync, write-open: the file (-y); others: the path named. */
  paths: string[];
  call: Call;
}

interface Trace {
  /** What each step did, from its marker to the next one. */
  steps: Map<string, Op[]>;
  markers: string[];
  /** Line of each process's (or thread's) exit. */
  exits: Map<number, number>;
}

/** Parses `strace -f -y` output; joins calls that strace split (`<unfinished ...>`). */
function parseTrace(text: string): { calls: Call[]; exits: Map<number, number> } {
  const calls: Call[] = [];
  const exits = new Map<number, number>();
  const pending = new Map<number, { seq: number; head: string }>();
  text.split('\n').forEach((line, seq) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) return;
    const pid = Number(m[1]);
    let body = m[2]!;
    let start = seq;
    if (body.startsWith('+++ ')) {
      exits.set(pid, seq);
      return;
    }
    if (body.endsWith(' <unfinished ...>')) {
      pending.set(pid, { seq, head: body.slice(0, -' <unfinished ...>'.length) });
      return;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(body);
    if (resumed) {
      const head = pending.get(pid);
      if (!head) throw new Error(`trace line ${seq + 1}: a resumed call that never started: ${line}`);
      pending.delete(pid);
      body = head.head + resumed[1]!;
      start = head.seq;
    }
    // name(args) = ret[<path>][ ERRNO (text)]; signals (--- ...) and `= ?` do not match.
    const call = /^(\w+)\((.*)\)\s+=\s+(-?\d+)(?:<(.*)>)?(?:\s.*)?$/.exec(body);
    if (!call) return;
    calls.push({
      seq: start,
      done: seq,
      pid,
      name: call[1]!,
      args: call[2]!,
      ret: Number(call[3]),
      retPath: call[4],
    });
  });
  return { calls, exits };
}

/** The path arguments of a call, each resolved against the directory fd before it (…at calls). */
function pathArgs(args: string): string[] {
  const re = /(?:(?:AT_FDCWD|\d+)<([^>]*)>,\s*)?"((?:[^"\\]|\\.)*)"/g;
  return [...args.matchAll(re)].map((m) => (m[1] !== undefined ? path.resolve(m[1], m[2]!) : m[2]!));
}

/** The successful calls that matter here, as operations on paths. */
function toOp(call: Call): Op | undefined {
  const { name, args, ret } = call;
  if (ret < 0) return undefined;
  if (/^rename(at2?)?$/.test(name)) return { kind: 'rename', paths: pathArgs(args).slice(0, 2), call };
  if (/^unlink(at)?$/.test(name)) return { kind: 'unlink', paths: pathArgs(args).slice(0, 1), call };
  if (/^mkdir(at)?$/.test(name)) return { kind: 'mkdir', paths: pathArgs(args).slice(0, 1), call };
  if (name === 'execve') return { kind: 'exec', paths: pathArgs(args).slice(0, 1), call };
  if (name === 'fsync' || name === 'fdatasync') {
    const fd = /^\d+<(.*)>$/.exec(args);
    return fd ? { kind: 'fsync', paths: [fd[1]!], call } : undefined;
  }
  if (name === 'openat' && call.retPath && /O_WRONLY|O_RDWR|O_CREAT/.test(args))
    return { kind: 'write-open', paths: [call.retPath], call };
  return undefined;
}

function readTrace(text: string): Trace {
  const { calls, exits } = parseTrace(text);
  const steps = new Map<string, Op[]>();
  const markers: string[] = [];
  let current: Op[] | undefined;
  for (const call of calls.sort((x, y) => x.seq - y.seq)) {
    // The markers fail (ENOENT) on purpose, so they are picked before toOp drops failures.
    if (/^f?access(at2?)?$/.test(call.name)) {
      const marker = pathArgs(call.args)[0]?.match(/^\/MARKER-(.*)$/)?.[1];
      if (marker !== undefined) {
        markers.push(marker);
        current = [];
        steps.set(marker, current);
        continue;
      }
    }
    const op = toOp(call);
    if (op && current) current.push(op);
  }
  return { steps, markers, exits };
}

const fsyncsOf = (ops: Op[], file: string) => ops.filter((o) => o.kind === 'fsync' && o.paths[0] === file);

/**
 * What a power loss could undo in one step: a rename, unlink or mkdir whose directory is not
 * fsynced after it, or a renamed file whose data (written in the step, by node or by a child
 * such as cp) is not fsynced after the writing and before the rename.
 */
function durabilityViolations(ops: Op[], exits: Map<number, number>): string[] {
  const violations: string[] = [];
  const dirSyncedAfter = (what: string, dir: string, call: Call) => {
    if (!fsyncsOf(ops, dir).some((f) => f.call.seq > call.done))
      violations.push(`${what}: no fsync of ${dir} after it`);
  };
  for (const op of ops) {
    const [p, to] = op.paths as [string, string | undefined];
    if (op.kind === 'rename') {
      dirSyncedAfter(`rename ${p} -> ${to}`, path.dirname(to!), op.call);
      if (path.dirname(p) !== path.dirname(to!))
        dirSyncedAfter(`rename ${p} -> ${to}`, path.dirname(p), op.call);
      for (const write of ops.filter((o) => o.kind === 'write-open' && o.paths[0] === p)) {
        if (write.call.seq > op.call.seq) continue;
        // A writer that exited before the rename (cp) is done writing only at its exit.
        const exit = exits.get(write.call.pid);
        const written = exit !== undefined && exit < op.call.seq ? exit : write.call.done;
        if (!fsyncsOf(ops, p).some((f) => f.call.seq > written && f.call.done < op.call.seq))
          violations.push(`rename ${p} -> ${to}: its data (pid ${write.call.pid}) is not fsynced before it`);
      }
    }
    if (op.kind === 'unlink') dirSyncedAfter(`unlink ${p}`, path.dirname(p), op.call);
    if (op.kind === 'mkdir') dirSyncedAfter(`mkdir ${p}`, path.dirname(p), op.call);
  }
  return violations;
}

/** The changes a step made, to compare with what it should have made. */
function changes(ops: Op[]) {
  const of = (kind: OpKind) => ops.filter((o) => o.kind === kind).map((o) => o.paths);
  return {
    renames: of('rename'),
    unlinks: of('unlink').flat(),
    mkdirs: of('mkdir').flat(),
    execs: of('exec').map(([p]) => path.basename(p!)),
  };
}

let base: string;
let a: string;
let b: string;
let other: string;
let mounted = false;
let trace: Trace;
const copyData = Buffer.alloc(256 * 1024, 0x5a);

beforeAll(async () => {
  // Real path: -y prints the kernel's path of each fd.
  base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-durability-')));
  [a, b, other] = ['a', 'b', 'other'].map((d) => path.join(base, d)) as [string, string, string];
  await Promise.all([a, b, other].map((d) => fs.mkdir(d)));
  // Another filesystem, so durableCopy and moveFile's copy path run for real.
  await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', other]);
  mounted = true;
  const [sa, so] = await Promise.all([fs.stat(a), fs.stat(other)]);
  if (sa.dev === so.dev) throw new Error(`${other} is not another filesystem than ${a}`);
  await fs.writeFile(path.join(a, 'r'), 'renamed\n');
  await fs.writeFile(path.join(a, 'c'), copyData);
  await fs.writeFile(path.join(a, 'm'), 'moved\n');

  const traceFile = path.join(base, 'trace');
  const result = await execa(
    'strace',
    ['-f', '-y', '-e', `trace=${TRACED.join(',')}`, '-o', traceFile, '--'].concat([
      process.execPath,
      '--import',
      'tsx',
      OPS_SCRIPT,
      base,
      other,
    ]),
    { cwd: repoRoot, reject: false, all: true },
  );
  if (result.exitCode !== 0)
    throw new Error(`strace of ${OPS_SCRIPT} failed (${result.exitCode}):\n${result.all}`);
  trace = readTrace(await fs.readFile(traceFile, 'utf8'));
});

afterAll(async () => {
  if (mounted) await run('umount', [other]);
  if (base) await fs.rm(base, { recursive: true, force: true });
});

describe('durable file operations, in the system-call trace', () => {
  it('traced every step, in order, and each left the files where it should', async () => {
    expect(trace.markers).toEqual([...DURABILITY_STEPS, 'end']);
    expect((await fs.readdir(a)).sort()).toEqual(['c', 'd', 'state.json']);
    expect(await fs.readdir(b)).toEqual([]);
    expect((await fs.readdir(other)).sort()).toEqual(['c', 'm']);
    expect(await fs.readFile(path.join(a, 'state.json'), 'utf8')).toBe('{"ok":true}\n');
    expect((await fs.readFile(path.join(other, 'c'))).equals(copyData)).toBe(true);
    expect(await fs.readFile(path.join(other, 'm'), 'utf8')).toBe('moved\n');
  });

  // What each step must change; the durability rules are then checked on those changes.
  const expected = (): Record<DurabilityStep, ReturnType<typeof changes>> => {
    const none = { renames: [], unlinks: [], mkdirs: [], execs: [] };
    return {
      rename: { ...none, renames: [[path.join(a, 'r'), path.join(b, 'r')]] },
      unlink: { ...none, unlinks: [path.join(b, 'r')] },
      'write-atomic': { ...none, renames: [[path.join(a, 'state.json.tmp'), path.join(a, 'state.json')]] },
      copy: { ...none, renames: [[path.join(other, 'c.part'), path.join(other, 'c')]], execs: ['cp'] },
      'move-same-fs': { ...none, renames: [[path.join(a, 'm'), path.join(b, 'm')]] },
      'move-other-fs': {
        ...none,
        renames: [[path.join(other, 'm.part'), path.join(other, 'm')]],
        unlinks: [path.join(b, 'm')],
        execs: ['cp'],
      },
      'ensure-dir': { ...none, mkdirs: [path.join(a, 'd')] },
    };
  };

  it.each(DURABILITY_STEPS)('%s: every change is fsynced before the helper returns', (step) => {
    const ops = trace.steps.get(step) ?? [];
    expect(changes(ops)).toEqual(expected()[step]);
    expect(durabilityViolations(ops, trace.exits)).toEqual([]);
  });

  it.each(['copy', 'move-other-fs'] as const)(
    '%s: node fsyncs the .part after cp has exited, then renames it',
    (step) => {
      const ops = trace.steps.get(step) ?? [];
      const name = step === 'copy' ? 'c' : 'm';
      const part = path.join(other, `${name}.part`);
      const cp = ops.find((o) => o.kind === 'exec')!;
      const cpExit = trace.exits.get(cp.call.pid);
      expect(cpExit).toBeDefined();
      // cp wrote the .part; the fsync after its exit is what makes the copy count as made.
      expect(
        ops.some((o) => o.kind === 'write-open' && o.paths[0] === part && o.call.pid === cp.call.pid),
      ).toBe(true);
      const rename = ops.find((o) => o.kind === 'rename')!;
      const syncs = fsyncsOf(ops, part).filter((f) => f.call.seq > cpExit! && f.call.done < rename.call.seq);
      expect(syncs.length).toBeGreaterThan(0);
      expect(syncs.every((f) => f.call.pid !== cp.call.pid)).toBe(true);
    },
  );

  it('move-other-fs: the source is removed only once the copy is durable at its destination', () => {
    const ops = trace.steps.get('move-other-fs') ?? [];
    const rename = ops.find((o) => o.kind === 'rename')!;
    const unlink = ops.find((o) => o.kind === 'unlink')!;
    const destSynced = fsyncsOf(ops, other).find((f) => f.call.seq > rename.call.done);
    expect(destSynced).toBeDefined();
    expect(destSynced!.call.done).toBeLessThan(unlink.call.seq);
  });
});
