import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/domain/errors';
import { decideMerge, MAX_PULLS, type MergeWorld } from '../../src/domain/steps/merge';
import { decideRetain, type RetainWorld } from '../../src/domain/steps/retain';

const next = (d: ReturnType<typeof decideMerge> | ReturnType<typeof decideRetain>) =>
  d.kind === 'act' ? `${d.action.kind}${d.action.target ? ` ${d.action.target}` : ''}` : d.kind;
// The retain table names the code of a refusal when it matters.
const nextWithCode = (d: ReturnType<typeof decideRetain>) =>
  d.kind === 'refuse' ? `refuse ${d.code}` : next(d);

const merge = (over: Partial<MergeWorld> = {}): MergeWorld => ({
  vm: 'vm1',
  journal: { phase: 'snapshotted', mergeStartedVm: false },
  domain: { state: 'running', reason: 'restored' },
  disks: [
    { target: 'vda', dependsOnRetain: true, pulls: 0 },
    { target: 'vdb', dependsOnRetain: true, pulls: 0 },
  ],
  ...over,
});

describe('decideMerge', () => {
  it('reports the bytes of every pulling disk while it waits, so a bar can show the whole merge', () => {
    const d = decideMerge(
      merge({
        disks: [
          { target: 'vda', dependsOnRetain: true, pulls: 1, job: { cur: 100, end: 400 } },
          { target: 'vdb', dependsOnRetain: true, pulls: 1, job: { cur: 50, end: 600 } },
        ],
      }),
    );
    expect(d).toMatchObject({ kind: 'wait', progress: { file: 'vda,vdb', bytes: 150, total: 1000 } });
  });

  it.each<[string, Partial<MergeWorld>, string]>([
    ['refuses without a finished snapshot', { journal: undefined }, 'refuse'],
    [
      'refuses a snapshot still in progress',
      { journal: { phase: 'prepared', mergeStartedVm: false } },
      'refuse',
    ],
    ['starts a pull on the first pending disk', {}, 'start-pull vda'],
    [
      'starts the next disk while the first one pulls',
      {
        disks: [
          { target: 'vda', dependsOnRetain: true, pulls: 1, job: { cur: 1, end: 9 } },
          { target: 'vdb', dependsOnRetain: true, pulls: 0 },
        ],
      },
      'start-pull vdb',
    ],
    [
      'waits while every pending disk pulls (a retried merge finds the jobs of the killed one)',
      {
        disks: [
          { target: 'vda', dependsOnRetain: true, pulls: 0, job: { cur: 1, end: 9 } },
          { target: 'vdb', dependsOnRetain: true, pulls: 0, job: { cur: 2, end: 9 } },
        ],
      },
      'wait',
    ],
    [
      'starts a shut-off VM paused for the merge',
      { domain: { state: 'shut off', reason: 'saved' } },
      'start-paused',
    ],
    [
      'stops again only a VM it started itself',
      {
        journal: { phase: 'snapshotted', mergeStartedVm: true },
        domain: { state: 'paused', reason: 'user' },
        disks: [{ target: 'vda', dependsOnRetain: false, pulls: 1 }],
      },
      'stop-vm',
    ],
    [
      'leaves a paused VM it did not start alone',
      {
        domain: { state: 'paused', reason: 'user' },
        disks: [{ target: 'vda', dependsOnRetain: false, pulls: 0 }],
      },
      'finish',
    ],
    ['is done once merged', { journal: { phase: 'merged', mergeStartedVm: false } }, 'done'],
    [
      'gives up on a pull that keeps ending without finishing',
      { disks: [{ target: 'vda', dependsOnRetain: true, pulls: MAX_PULLS }] },
      'refuse',
    ],
  ])('%s', (_, over, expected) => {
    expect(next(decideMerge(merge(over)))).toBe(expected);
  });
});

const file = (
  name: string,
  atSource: boolean,
  atDestination: boolean,
  bytes: { copyBytes?: number; partBytes?: number } = {},
) => ({
  name,
  code: ErrorCode.copyFileToBackupFailed,
  atSource,
  atDestination,
  copyBytes: 0,
  partBytes: 0,
  ...bytes,
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
// Two files still to copy to another filesystem: 1 GiB + 1 MiB.
const toCopy = [file('a', true, false, { copyBytes: GiB }), file('b', true, false, { copyBytes: MiB })];
const space = (free: number | undefined) => ({ backupSpace: { path: '/backup/vm-persistent', free } });

const retain = (over: Partial<RetainWorld> = {}): RetainWorld => ({
  vm: 'vm1',
  retainDirExists: true,
  backupRoot: '/backup',
  backupRootExists: true,
  backupDirExists: true,
  backupSpace: { path: '/backup', free: 0 },
  blocking: [],
  files: [file('a', true, false), file('b', true, false)],
  strangers: [],
  manifestExists: true,
  ...over,
});

describe('decideRetain', () => {
  it.each<[string, Partial<RetainWorld>, string]>([
    ['refuses while a live image depends on the retain directory', { blocking: ['vda'] }, 'refuse'],
    ['refuses a missing backup root', { backupRootExists: false }, 'refuse'],
    ['creates the backup directory', { backupDirExists: false }, 'create-backup-dir'],
    ['copies when the backup root has room', { files: toCopy, ...space(2 * GiB) }, 'move-file a'],
    [
      'creates the backup directory only when there is room',
      { files: toCopy, backupDirExists: false, ...space(2 * GiB) },
      'create-backup-dir',
    ],
    [
      'refuses with too little room, before anything is copied',
      { files: toCopy, ...space(GiB) },
      'refuse 47',
    ],
    [
      'refuses with too little room before even creating the backup directory',
      { files: toCopy, backupDirExists: false, ...space(GiB) },
      'refuse 47',
    ],
    [
      'counts the margin: exactly the bytes to copy is too little',
      { files: toCopy, ...space(GiB + MiB) },
      'refuse 47',
    ],
    [
      'needs room only for what is left to copy',
      {
        files: [file('a', false, true), file('b', true, false, { copyBytes: MiB })],
        ...space(32 * MiB),
      },
      'move-file b',
    ],
    [
      'counts a .part a killed copy left as room (the copy removes it first)',
      {
        files: [file('a', true, false, { copyBytes: GiB, partBytes: GiB / 2 }), file('b', true, true)],
        ...space(GiB),
      },
      'move-file a',
    ],
    ['needs no room when every file moves by a rename', { ...space(0) }, 'move-file a'],
    [
      'needs no room to remove the sources of copied files',
      { files: [file('a', true, true), file('b', true, true)], ...space(0) },
      'remove-source a',
    ],
    [
      'refuses when the free space cannot be read and a copy is needed',
      { files: toCopy, ...space(undefined) },
      'refuse 48',
    ],
    ['moves the first file', {}, 'move-file a'],
    [
      'removes the source of a file copied before a crash',
      { files: [file('a', true, true), file('b', true, false)] },
      'remove-source a',
    ],
    ['moves the next file', { files: [file('a', false, true), file('b', true, false)] }, 'move-file b'],
    ['refuses a file that is nowhere', { files: [file('a', false, false)] }, 'refuse'],
    [
      'refuses to remove a retain directory holding files it does not know',
      { files: [file('a', false, true)], strangers: ['x'] },
      'refuse',
    ],
    [
      'writes the manifest once every file is in the backup, before the retain directory goes',
      { files: [file('a', false, true)], manifestExists: false },
      'write-manifest',
    ],
    [
      'writes no manifest while a file is still to move',
      { files: [file('a', false, true), file('b', true, false)], manifestExists: false },
      'move-file b',
    ],
    ['clears the retain directory at the end', { files: [file('a', false, true)] }, 'clear-retain-dir'],
    [
      'is not done without a manifest, even when the retain directory is gone',
      { retainDirExists: false, files: [file('a', false, true)], manifestExists: false },
      'write-manifest',
    ],
    [
      'is done when every file is in the backup',
      { retainDirExists: false, files: [file('a', false, true)] },
      'done',
    ],
    [
      'never reports a backup done that misses a file',
      { retainDirExists: false, files: [file('a', false, false)] },
      'refuse',
    ],
  ])('%s', (_, over, expected) => {
    const d = decideRetain(retain(over));
    expect(expected.startsWith('refuse ') ? nextWithCode(d) : next(d)).toBe(expected);
  });

  it('names the backup root, the bytes needed and the bytes free when it refuses for room', () => {
    const d = decideRetain(retain({ files: toCopy, ...space(GiB) }));
    expect(d).toMatchObject({ kind: 'refuse', code: ErrorCode.notEnoughDiskSpace });
    const message = d.kind === 'refuse' ? d.message : '';
    const needed = Math.ceil((GiB + MiB) * 1.01) + 16 * MiB;
    expect(message).toContain('/backup ');
    expect(message).toContain(`needs ${needed} bytes`);
    expect(message).toContain(`${GiB} bytes are free`);
  });
});
