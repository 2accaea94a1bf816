import { statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { setMaxParallelSaves, withSaveRoom } from '../../src/activities/node/save-slots';
import { nodeLimits } from '../../src/config';
import { BackupError, ErrorCode } from '../../src/domain/errors';
import { admitSave, groupSaves, stateFileBytes, type SaveRequest } from '../../src/domain/save-room';

const MiB = 1024 * 1024;
const req = (r: Partial<SaveRequest>): SaveRequest => ({
  free: 1000 * MiB,
  total: 1000 * MiB,
  needed: 300 * MiB,
  onFilesystem: [],
  running: 0,
  maxParallel: 4,
  ...r,
});

describe('stateFileBytes', () => {
  it('is RAM × 1.1 + 16 MiB, as inspectForSnapshot checks', () => {
    expect(stateFileBytes(256 * MiB)).toBe(Math.ceil(256 * MiB * 1.1) + 16 * MiB);
  });
});

describe('admitSave', () => {
  it('admits a save that fits beside nothing', () => {
    expect(admitSave(req({}))).toEqual({ kind: 'admit' });
  });

  it('counts what running saves still have to write against the free space', () => {
    // Two saves of 300 MiB running, 100 MiB of each written: 400 MiB still to come.
    const running = [
      { reserved: 300 * MiB, written: 100 * MiB },
      { reserved: 300 * MiB, written: 100 * MiB },
    ];
    const w = admitSave(req({ free: 800 * MiB, needed: 450 * MiB, onFilesystem: running, running: 2 }));
    expect(w).toMatchObject({ kind: 'wait', for: 'room', freeBytes: 400 * MiB });
    if (w.kind === 'wait') expect(w.why).toBe('450 MiB needed, 400 free');
    expect(admitSave(req({ free: 800 * MiB, needed: 400 * MiB, onFilesystem: running, running: 2 }))).toEqual(
      { kind: 'admit' },
    );
  });

  it('a file larger than its reservation never makes the reservation negative', () => {
    const w = admitSave(req({ free: 200 * MiB, onFilesystem: [{ reserved: 10 * MiB, written: 50 * MiB }] }));
    expect(w).toMatchObject({ kind: 'wait', freeBytes: 200 * MiB });
  });

  it('waits at the node cap of parallel saves even with room', () => {
    const w = admitSave(req({ running: 4, maxParallel: 4 }));
    expect(w).toMatchObject({ kind: 'wait', for: 'cap' });
    if (w.kind === 'wait') expect(w.why).toBe('4 saves run on this node, at most 4 at once');
  });

  it('refuses at once a state larger than the whole filesystem, whatever runs', () => {
    expect(admitSave(req({ needed: 1001 * MiB, running: 9 }))).toMatchObject({ kind: 'never' });
    expect(admitSave(req({ needed: 1000 * MiB, free: 0 }))).toMatchObject({ kind: 'wait' });
  });
});

describe('groupSaves', () => {
  it('reports nothing for no saves', () => {
    expect(groupSaves([])).toEqual({ groups: [], maxConcurrent: 0 });
  });

  it('puts saves that ran together into one group', () => {
    expect(
      groupSaves([
        { vm: 'b', startedAt: 1, endedAt: 10 },
        { vm: 'a', startedAt: 0, endedAt: 10 },
        { vm: 'c', startedAt: 2, endedAt: 5 },
      ]),
    ).toEqual({ groups: [['a', 'b', 'c']], maxConcurrent: 3 });
  });

  it('starts a new group with the first save that began after one of the group ended', () => {
    // Room for two: c starts when a is done, d when b is done.
    expect(
      groupSaves([
        { vm: 'a', startedAt: 0, endedAt: 10 },
        { vm: 'b', startedAt: 1, endedAt: 12 },
        { vm: 'c', startedAt: 11, endedAt: 20 },
        { vm: 'd', startedAt: 13, endedAt: 22 },
      ]),
    ).toEqual({
      groups: [
        ['a', 'b'],
        ['c', 'd'],
      ],
      maxConcurrent: 2,
    });
  });

  it('one after the other: a group each, and a save starting as another ends does not overlap it', () => {
    expect(
      groupSaves([
        { vm: 'a', startedAt: 0, endedAt: 5 },
        { vm: 'b', startedAt: 5, endedAt: 9 },
      ]),
    ).toEqual({ groups: [['a'], ['b']], maxConcurrent: 1 });
  });
});

describe('nodeLimits', () => {
  it('defaults to 4 parallel saves, 32 activity slots and unlimited reads', () => {
    expect(nodeLimits({})).toEqual({ maxParallelSaves: 4, maxParallelActivities: 32, readMiBPerSecond: 0 });
  });

  it('reads all three, and refuses what is not a positive integer', () => {
    expect(
      nodeLimits({
        VMBACKUP_MAX_PARALLEL_SAVES: '2',
        VMBACKUP_MAX_PARALLEL_ACTIVITIES: '64',
        VMBACKUP_READ_MIB_PER_SECOND: '200',
      }),
    ).toEqual({ maxParallelSaves: 2, maxParallelActivities: 64, readMiBPerSecond: 200 });
    expect(() => nodeLimits({ VMBACKUP_MAX_PARALLEL_SAVES: '0' })).toThrow(/positive integer/);
    expect(() => nodeLimits({ VMBACKUP_MAX_PARALLEL_ACTIVITIES: '1.5' })).toThrow(/positive integer/);
    expect(() => nodeLimits({ VMBACKUP_READ_MIB_PER_SECOND: '-5' })).toThrow(
      /VMBACKUP_READ_MIB_PER_SECOND must be a positive integer/,
    );
  });
});

describe('withSaveRoom (one worker, the real filesystem of the temp directory)', () => {
  const dir = os.tmpdir();
  const s = statfsSync(dir);
  const free = s.bavail * s.bsize;
  const file = (n: string) => path.join(dir, `vmbt-no-such-state-${n}`);

  /** Runs a save that lasts until `release` is called, in an activity context of its own. */
  function save(name: string, needed: number, log: string[]) {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const done = env.run(() =>
      withSaveRoom({ dir, file: file(name), needed, ramDisk: true }, async () => {
        log.push(`${name} start`);
        await held;
        log.push(`${name} end`);
      }),
    );
    return { done, release, beats };
  }
  const tick = () => new Promise((r) => setTimeout(r, 700));

  it('a save that fits only once another ended waits for it, heartbeating why, and then runs', async () => {
    setMaxParallelSaves(4);
    const log: string[] = [];
    const needed = Math.floor(free * 0.6);
    const a = save('a', needed, log);
    await tick();
    const b = save('b', needed, log);
    await tick();
    expect(log).toEqual(['a start']);
    expect(b.beats).toContainEqual(
      expect.objectContaining({
        waiting: expect.stringMatching(/^waiting for room for the state file on .*MiB needed, \d+ free$/),
      }),
    );
    a.release();
    await a.done;
    await tick();
    expect(log).toEqual(['a start', 'a end', 'b start']);
    b.release();
    await b.done;
  });

  it('releases the reservation when the save fails', async () => {
    setMaxParallelSaves(4);
    const needed = Math.floor(free * 0.6);
    const env = new MockActivityEnvironment();
    await expect(
      env.run(() =>
        withSaveRoom({ dir, file: file('f'), needed, ramDisk: true }, () =>
          Promise.reject(new Error('ENOSPC')),
        ),
      ),
    ).rejects.toThrow('ENOSPC');
    const log: string[] = [];
    const c = save('c', needed, log);
    await tick();
    expect(log).toEqual(['c start']);
    c.release();
    await c.done;
  });

  it('holds a save back at the node cap', async () => {
    setMaxParallelSaves(1);
    const log: string[] = [];
    const a = save('a', MiB, log);
    await tick();
    const b = save('b', MiB, log);
    await tick();
    expect(log).toEqual(['a start']);
    expect(b.beats).toContainEqual(
      expect.objectContaining({
        waiting: expect.stringMatching(
          /^waiting for a save slot: 1 save runs on this node, at most 1 at once$/,
        ),
      }),
    );
    a.release();
    await a.done;
    await tick();
    expect(log).toEqual(['a start', 'a end', 'b start']);
    b.release();
    await b.done;
    setMaxParallelSaves(4);
  });

  it('fails at once with ramDiskTooSmall (4) when the state can never fit', async () => {
    const env = new MockActivityEnvironment();
    const err = await env
      .run(() =>
        withSaveRoom({ dir, file: file('x'), needed: s.blocks * s.bsize + 1, ramDisk: true }, async () => 1),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as BackupError).code).toBe(ErrorCode.ramDiskTooSmall);
    expect((err as BackupError).message).toMatch(/can never hold/);
  });
});
