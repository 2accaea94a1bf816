import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/domain/errors';
import {
  decideLiveMerge,
  decideLiveRollback,
  decideLiveSnapshot,
  LIVE_MERGE_ACTIONS,
  LIVE_ROLLBACK_ACTIONS,
  LIVE_SNAPSHOT_ACTIONS,
  liveObstacle,
  MAX_COMMITS,
  MAX_LIVE_ATTEMPTS,
  type LiveDiskView,
  type LiveJournalView,
  type LiveWorld,
} from '../../src/domain/steps/live';
import type { DomainView } from '../../src/domain/steps/snapshot';

type AnyDecision =
  | ReturnType<typeof decideLiveSnapshot>
  | ReturnType<typeof decideLiveMerge>
  | ReturnType<typeof decideLiveRollback>;

/** 'act' decisions as "kind target", done as "done result", refusals as "refuse code". */
const next = (d: AnyDecision): string => {
  switch (d.kind) {
    case 'act':
      return `${d.action.kind}${d.action.target ? ` ${d.action.target}` : ''}`;
    case 'done':
      return `done ${d.result}`;
    case 'refuse':
      return `refuse ${d.code}`;
    case 'wait':
      return 'wait';
  }
};

const disk = (over: Partial<LiveDiskView> = {}): LiveDiskView => ({
  target: 'vda',
  source: 'image',
  imageExists: true,
  overlayExists: false,
  overlayHeld: false,
  retained: false,
  imageUnchanged: true,
  commits: 0,
  ...over,
});
/** A disk the VM runs on after the snapshot: its overlay exists and QEMU holds it. */
const onOverlay = (over: Partial<LiveDiskView> = {}): LiveDiskView =>
  disk({ source: 'overlay', overlayExists: true, overlayHeld: true, ...over });

const journal = (over: Partial<LiveJournalView> = {}): LiveJournalView => ({
  phase: 'prepared',
  mode: 'live',
  wasRunning: true,
  wasPaused: false,
  liveAttempts: 0,
  pausedByUs: false,
  mergeStartedVm: false,
  ...over,
});

const running: DomainView = { state: 'running', reason: 'booted' };
const paused: DomainView = { state: 'paused', reason: 'user' };
const off: DomainView = { state: 'shut off', reason: 'shutdown' };
const snapshotting: DomainView = { state: 'running', reason: 'booted', job: 'Snapshot' };

const world = (over: Partial<LiveWorld> = {}): LiveWorld => ({
  vm: 'vm1',
  journal: journal(),
  domain: running,
  disks: [disk()],
  retainDirExists: true,
  xmlSaved: true,
  ldifSaved: true,
  ldifGiven: true,
  stateSaved: false,
  stateRetained: false,
  pauseDue: false,
  ...over,
});

/** After the live snapshot: the VM runs on its overlays, the memory file is written. */
const snapshotted = (over: Partial<LiveWorld> = {}): LiveWorld =>
  world({ disks: [onOverlay(), onOverlay({ target: 'vdb' })], stateSaved: true, ...over });

describe('decideLiveSnapshot', () => {
  describe('at the start', () => {
    it('a VM without journal that runs begins', () => {
      expect(next(decideLiveSnapshot(world({ journal: undefined, retainDirExists: false })))).toBe('begin');
    });

    it('a VM without journal on which libvirt runs a job is refused, never begun', () => {
      const d = decideLiveSnapshot(world({ journal: undefined, domain: snapshotting }));
      expect(next(d)).toBe(`refuse ${ErrorCode.wrongStateInformation}`);
    });

    it('saves the XML, then the directory entry, and refuses without a directory entry to save', () => {
      expect(next(decideLiveSnapshot(world({ xmlSaved: false, ldifSaved: false })))).toBe('save-xml');
      expect(next(decideLiveSnapshot(world({ ldifSaved: false })))).toBe('save-ldif');
      expect(next(decideLiveSnapshot(world({ ldifSaved: false, ldifGiven: false })))).toBe(
        `refuse ${ErrorCode.cannotSaveDirectoryEntry}`,
      );
    });

    it('a VM that is not defined is refused', () => {
      expect(next(decideLiveSnapshot(world({ domain: { state: 'absent', reason: '' } })))).toBe(
        `refuse ${ErrorCode.cannotFindMachine}`,
      );
    });
  });

  describe('while libvirt runs the Snapshot job', () => {
    it('waits for the job', () => {
      expect(next(decideLiveSnapshot(world({ domain: snapshotting })))).toBe('wait');
    });

    it('pauses a running VM once the pause is due', () => {
      expect(next(decideLiveSnapshot(world({ domain: snapshotting, pauseDue: true })))).toBe('pause');
    });

    it('never pauses twice: once paused by us it waits', () => {
      const w = world({
        domain: { state: 'paused', reason: 'user', job: 'Snapshot' },
        journal: journal({ pausedByUs: true }),
        pauseDue: true,
      });
      expect(next(decideLiveSnapshot(w))).toBe('wait');
      // Even should the VM run again while the job goes on.
      expect(next(decideLiveSnapshot({ ...w, domain: snapshotting }))).toBe('wait');
    });

    it('pauses only for a Snapshot job', () => {
      const w = world({ domain: { state: 'running', reason: 'booted', job: 'Save' }, pauseDue: true });
      expect(next(decideLiveSnapshot(w))).toBe('wait');
    });

    it('a retry never starts a second snapshot over the first while any job runs', () => {
      for (const job of ['Snapshot', 'Save', 'Backup'])
        for (const state of ['running', 'paused'] as const)
          for (const pauseDue of [false, true])
            for (const pausedByUs of [false, true]) {
              const w = world({
                domain: { state, reason: 'booted', job },
                journal: journal({ liveAttempts: 1, pausedByUs }),
                pauseDue,
              });
              const d = decideLiveSnapshot(w);
              expect(['wait', 'pause']).toContain(next(d));
              expect(next(d)).not.toBe('live-snapshot');
            }
    });
  });

  describe('with the VM on its overlays', () => {
    it('resumes a VM that was not paused at the start before anything else', () => {
      const w = snapshotted({
        domain: paused,
        stateSaved: false,
        disks: [onOverlay({ target: 'vda' })],
      });
      // Even before refusing for the lost memory file, and before any copy.
      expect(next(decideLiveSnapshot(w))).toBe('resume');
      expect(next(decideLiveSnapshot({ ...w, stateSaved: true }))).toBe('resume');
    });

    it('leaves a VM paused that was paused at the start', () => {
      const w = snapshotted({ domain: paused, journal: journal({ wasPaused: true }) });
      expect(next(decideLiveSnapshot(w))).toBe('copy-disk vda');
    });

    it('refuses when the memory file is gone', () => {
      expect(next(decideLiveSnapshot(snapshotted({ stateSaved: false })))).toBe(
        `refuse ${ErrorCode.cannotSaveState}`,
      );
    });

    it('copies every frozen image in order, then retains the memory file, then finishes', () => {
      expect(next(decideLiveSnapshot(snapshotted()))).toBe('copy-disk vda');
      const vdaCopied = snapshotted({ disks: [onOverlay({ retained: true }), onOverlay({ target: 'vdb' })] });
      expect(next(decideLiveSnapshot(vdaCopied))).toBe('copy-disk vdb');
      const allCopied = snapshotted({
        disks: [onOverlay({ retained: true }), onOverlay({ target: 'vdb', retained: true })],
      });
      expect(next(decideLiveSnapshot(allCopied))).toBe('retain-state');
      // The memory file moved: only the retained one is left.
      expect(next(decideLiveSnapshot({ ...allCopied, stateSaved: false, stateRetained: true }))).toBe(
        'finish',
      );
    });

    it('refuses a disk on a file that is neither image nor overlay', () => {
      const w = snapshotted({ disks: [onOverlay(), disk({ target: 'vdb', source: 'other' })] });
      expect(next(decideLiveSnapshot(w))).toBe(`refuse ${ErrorCode.wrongStateInformation}`);
    });
  });

  describe('with the VM on its images after a failed attempt', () => {
    const failed = (over: Partial<LiveWorld> = {}) =>
      world({ journal: journal({ liveAttempts: 1 }), ...over });

    it('discards a leftover overlay nobody holds', () => {
      const w = failed({ disks: [disk(), disk({ target: 'vdb', overlayExists: true })] });
      expect(next(decideLiveSnapshot(w))).toBe('discard-overlay vdb');
    });

    it('refuses a leftover overlay the VM holds open', () => {
      const w = failed({ disks: [disk({ overlayExists: true, overlayHeld: true })] });
      expect(next(decideLiveSnapshot(w))).toBe(`refuse ${ErrorCode.wrongStateInformation}`);
    });

    it('removes a leftover memory file', () => {
      expect(next(decideLiveSnapshot(failed({ stateSaved: true })))).toBe('remove-state');
    });

    it('resumes a VM it paused itself before clearing leftovers', () => {
      const w = failed({
        domain: paused,
        journal: journal({ liveAttempts: 1, pausedByUs: true }),
        stateSaved: true,
      });
      expect(next(decideLiveSnapshot(w))).toBe('resume');
    });

    it('falls back to save mode when libvirt refused the live snapshot', () => {
      const w = failed({ journal: journal({ liveAttempts: 1, liveError: 'unsupported configuration' }) });
      expect(next(decideLiveSnapshot(w))).toBe('fall-back');
    });

    it(`falls back to save mode after ${MAX_LIVE_ATTEMPTS} attempts`, () => {
      expect(
        next(decideLiveSnapshot(failed({ journal: journal({ liveAttempts: MAX_LIVE_ATTEMPTS }) }))),
      ).toBe('fall-back');
      expect(
        next(decideLiveSnapshot(failed({ journal: journal({ liveAttempts: MAX_LIVE_ATTEMPTS + 1 }) }))),
      ).toBe('fall-back');
    });

    it('otherwise takes the live snapshot (again)', () => {
      expect(next(decideLiveSnapshot(failed()))).toBe('live-snapshot');
      expect(next(decideLiveSnapshot(world()))).toBe('live-snapshot');
    });

    it('clears leftovers before falling back', () => {
      const w = failed({
        journal: journal({ liveAttempts: MAX_LIVE_ATTEMPTS, liveError: 'x' }),
        disks: [disk({ overlayExists: true })],
        stateSaved: true,
      });
      expect(next(decideLiveSnapshot(w))).toBe('discard-overlay vda');
      expect(next(decideLiveSnapshot({ ...w, disks: [disk()] }))).toBe('remove-state');
    });

    it('refuses a VM shut down before its live snapshot', () => {
      expect(next(decideLiveSnapshot(failed({ domain: off })))).toBe(
        `refuse ${ErrorCode.wrongStateInformation}`,
      );
    });
  });

  describe('a journal past the snapshot', () => {
    it("a journal in save mode is done 'fell-back'", () => {
      expect(next(decideLiveSnapshot(world({ journal: journal({ mode: 'save' }) })))).toBe('done fell-back');
    });

    it('a snapshotted journal is done', () => {
      expect(next(decideLiveSnapshot(world({ journal: journal({ phase: 'snapshotted' }) })))).toBe(
        'done snapshotted',
      );
      expect(next(decideLiveSnapshot(world({ journal: journal({ phase: 'merged' }) })))).toBe(
        'done snapshotted',
      );
    });
  });

  describe('a VM shut off at the start', () => {
    const shutOff = (over: Partial<LiveWorld> = {}) =>
      world({
        journal: journal({ wasRunning: false }),
        domain: off,
        disks: [disk(), disk({ target: 'vdb' })],
        ...over,
      });

    it('copies each disk, writes the placeholder, and finishes', () => {
      expect(next(decideLiveSnapshot(shutOff()))).toBe('copy-disk vda');
      expect(
        next(decideLiveSnapshot(shutOff({ disks: [disk({ retained: true }), disk({ target: 'vdb' })] }))),
      ).toBe('copy-disk vdb');
      const copied = shutOff({ disks: [disk({ retained: true }), disk({ target: 'vdb', retained: true })] });
      expect(next(decideLiveSnapshot(copied))).toBe('write-placeholder');
      expect(next(decideLiveSnapshot({ ...copied, stateRetained: true }))).toBe('finish');
    });

    it('refuses when an image changed while it was copied', () => {
      const w = shutOff({
        disks: [disk({ retained: true }), disk({ target: 'vdb', imageUnchanged: false })],
      });
      expect(next(decideLiveSnapshot(w))).toBe(`refuse ${ErrorCode.wrongStateInformation}`);
    });

    it('refuses when the VM became active, even with every disk copied', () => {
      const copied = [disk({ retained: true }), disk({ target: 'vdb', retained: true })];
      for (const domain of [running, paused])
        expect(next(decideLiveSnapshot(shutOff({ domain, disks: copied, stateRetained: true })))).toBe(
          `refuse ${ErrorCode.wrongStateInformation}`,
        );
    });
  });

  it('some disks on overlays and some on images is refused: it never guesses', () => {
    const mixed = [onOverlay(), disk({ target: 'vdb' })];
    for (const domain of [running, paused])
      for (const stateSaved of [false, true])
        for (const liveAttempts of [0, MAX_LIVE_ATTEMPTS])
          expect(
            next(
              decideLiveSnapshot(
                world({ domain, disks: mixed, stateSaved, journal: journal({ liveAttempts }) }),
              ),
            ),
          ).toBe(`refuse ${ErrorCode.wrongStateInformation}`);
  });
});

describe('decideLiveMerge', () => {
  const merging = (over: Partial<LiveWorld> = {}) =>
    snapshotted({
      journal: journal({ phase: 'snapshotted' }),
      stateSaved: false,
      stateRetained: true,
      ...over,
    });

  it('starts a commit on a disk on its overlay without a job', () => {
    expect(next(decideLiveMerge(merging()))).toBe('start-commit vda');
  });

  it('pivots a commit that reached its end', () => {
    const w = merging({
      disks: [onOverlay({ job: { cur: 9, end: 9 }, commits: 1 }), onOverlay({ target: 'vdb' })],
    });
    expect(next(decideLiveMerge(w))).toBe('pivot vda');
  });

  it('waits for a commit in progress, and for one that has not reported its size', () => {
    for (const job of [
      { cur: 3, end: 9 },
      { cur: 0, end: 0 },
    ])
      expect(next(decideLiveMerge(merging({ disks: [onOverlay({ job, commits: 1 })] })))).toBe('wait');
  });

  it('reports the bytes of the commit it waits for', () => {
    const d = decideLiveMerge(merging({ disks: [onOverlay({ job: { cur: 3, end: 9 }, commits: 1 })] }));
    expect(d).toMatchObject({ kind: 'wait', progress: { file: 'vda', bytes: 3, total: 9 } });
  });

  it(`gives up on a commit that ended ${MAX_COMMITS} times without the pivot`, () => {
    expect(next(decideLiveMerge(merging({ disks: [onOverlay({ commits: MAX_COMMITS })] })))).toBe(
      `refuse ${ErrorCode.mergeFailed}`,
    );
    expect(next(decideLiveMerge(merging({ disks: [onOverlay({ commits: MAX_COMMITS - 1 })] })))).toBe(
      'start-commit vda',
    );
  });

  it('starts a VM shut off on its overlay paused for the commit', () => {
    expect(next(decideLiveMerge(merging({ domain: off, disks: [onOverlay({ overlayHeld: false })] })))).toBe(
      'start-paused',
    );
  });

  it('commits the next disk once the first pivoted', () => {
    const w = merging({
      disks: [disk({ overlayExists: true, overlayHeld: true }), onOverlay({ target: 'vdb' })],
    });
    expect(next(decideLiveMerge(w))).toBe('start-commit vdb');
  });

  it('after the pivots discards the overlays nobody holds, then finishes', () => {
    const pivoted = merging({
      disks: [disk({ overlayExists: true }), disk({ target: 'vdb', overlayExists: true })],
    });
    expect(next(decideLiveMerge(pivoted))).toBe('discard-overlay vda');
    expect(
      next(decideLiveMerge(merging({ disks: [disk(), disk({ target: 'vdb', overlayExists: true })] }))),
    ).toBe('discard-overlay vdb');
    expect(next(decideLiveMerge(merging({ disks: [disk(), disk({ target: 'vdb' })] })))).toBe('finish');
  });

  it('stops a VM it started itself for the commit, then finishes', () => {
    const ours = merging({
      journal: journal({ phase: 'snapshotted', mergeStartedVm: true }),
      domain: paused,
      disks: [disk()],
    });
    expect(next(decideLiveMerge(ours))).toBe('stop-vm');
    expect(next(decideLiveMerge({ ...ours, domain: off }))).toBe('finish');
  });

  it('leaves a paused VM it did not start alone', () => {
    expect(next(decideLiveMerge(merging({ domain: paused, disks: [disk()] })))).toBe('finish');
  });

  it("refuses a journal still in phase 'prepared' or no journal at all", () => {
    expect(next(decideLiveMerge(merging({ journal: journal() })))).toBe(
      `refuse ${ErrorCode.wrongStateInformation}`,
    );
    expect(next(decideLiveMerge(merging({ journal: undefined })))).toBe(
      `refuse ${ErrorCode.wrongStateInformation}`,
    );
  });

  it('is done once merged', () => {
    expect(next(decideLiveMerge(merging({ journal: journal({ phase: 'merged' }) })))).toBe('done merged');
  });
});

describe('decideLiveRollback', () => {
  it("completes a snapshot that has every copy and its memory file ('completed')", () => {
    const w = snapshotted({
      disks: [onOverlay({ retained: true }), onOverlay({ target: 'vdb', retained: true })],
    });
    expect(next(decideLiveRollback(w))).toBe('done completed');
    expect(next(decideLiveRollback({ ...w, stateSaved: false, stateRetained: true }))).toBe('done completed');
  });

  it('commits a VM on its overlays back when a copy is missing, never completes it', () => {
    const w = snapshotted({ disks: [onOverlay({ retained: true }), onOverlay({ target: 'vdb' })] });
    expect(next(decideLiveRollback(w))).toBe('start-commit vda');
  });

  it('commits back when the memory file is lost', () => {
    const w = snapshotted({
      stateSaved: false,
      disks: [onOverlay({ retained: true }), onOverlay({ target: 'vdb', retained: true })],
    });
    expect(next(decideLiveRollback(w))).toBe('start-commit vda');
  });

  it('resumes a VM it paused itself', () => {
    const w = world({ domain: paused, journal: journal({ pausedByUs: true }) });
    expect(next(decideLiveRollback(w))).toBe('resume');
  });

  it('leaves a VM paused that was paused at the start', () => {
    const w = world({ domain: paused, journal: journal({ wasPaused: true, pausedByUs: true }) });
    expect(next(decideLiveRollback(w))).toBe('remove-retain-dir');
  });

  it('waits while a libvirt job runs', () => {
    expect(next(decideLiveRollback(world({ domain: snapshotting })))).toBe('wait');
    expect(next(decideLiveRollback(snapshotted({ domain: snapshotting })))).toBe('wait');
  });

  it('pivots, discards the spent overlay, then removes the retain directory and is rolled back', () => {
    expect(next(decideLiveRollback(snapshotted({ disks: [onOverlay({ job: { cur: 5, end: 5 } })] })))).toBe(
      'pivot vda',
    );
    expect(next(decideLiveRollback(world({ disks: [disk({ overlayExists: true })] })))).toBe(
      'discard-overlay vda',
    );
    const onImages = world({ stateSaved: true });
    expect(next(decideLiveRollback(onImages))).toBe('remove-retain-dir');
    expect(next(decideLiveRollback({ ...onImages, stateSaved: false }))).toBe('remove-retain-dir');
    expect(next(decideLiveRollback({ ...onImages, stateSaved: false, retainDirExists: false }))).toBe(
      'done rolled-back',
    );
  });

  it('stops a VM it started for the commit back', () => {
    const w = world({ domain: paused, journal: journal({ mergeStartedVm: true }), retainDirExists: false });
    expect(next(decideLiveRollback(w))).toBe('stop-vm');
  });

  it('a finished snapshot is completed, not rolled back', () => {
    expect(next(decideLiveRollback(world({ journal: journal({ phase: 'snapshotted' }) })))).toBe(
      'done completed',
    );
  });
});

describe('liveObstacle', () => {
  it('names a PCI device passed through', () => {
    const xml = `<domain type='kvm'><devices><hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev></devices></domain>`;
    expect(liveObstacle(xml)).toMatch(/host device/);
  });

  it('finds nothing in a plain domain', () => {
    const xml = `<domain type='kvm'><name>vm1</name><devices><disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/vm1.qcow2'/><target dev='vda' bus='virtio'/></disk>
      <interface type='network'><source network='default'/></interface></devices></domain>`;
    expect(liveObstacle(xml)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Every world a crash can leave, and then some.

const JOURNALS: (LiveJournalView | undefined)[] = [
  undefined,
  journal(),
  journal({ liveAttempts: 1, pausedByUs: true }),
  journal({ wasPaused: true }),
  journal({ wasPaused: true, pausedByUs: true }),
  journal({ liveAttempts: MAX_LIVE_ATTEMPTS }),
  journal({ liveAttempts: 1, liveError: 'unsupported configuration' }),
  journal({ wasRunning: false }),
  journal({ wasRunning: false, mergeStartedVm: true }),
  journal({ mode: 'save' }),
  journal({ phase: 'snapshotted' }),
  journal({ phase: 'snapshotted', wasRunning: false, mergeStartedVm: true }),
  journal({ phase: 'merged' }),
];
const DOMAINS: DomainView[] = [
  running,
  paused,
  off,
  snapshotting,
  { state: 'paused', reason: 'user', job: 'Snapshot' },
  { state: 'absent', reason: '' },
];
const OVERLAY_FILES = ['none', 'exists', 'held'] as const;
const COMMITS: Pick<LiveDiskView, 'job' | 'commits'>[] = [
  { commits: 0 },
  { commits: 1, job: { cur: 3, end: 9 } },
  { commits: 1, job: { cur: 9, end: 9 } },
  { commits: MAX_COMMITS },
];

/** Every disk state; a commit job only on a disk on its overlay; `commitsFor` limits those. */
function diskStates(target: string, commitsFor: typeof COMMITS): LiveDiskView[] {
  const out: LiveDiskView[] = [];
  for (const source of ['image', 'overlay'] as const)
    for (const file of OVERLAY_FILES)
      for (const retained of [false, true])
        for (const c of source === 'overlay' ? commitsFor : COMMITS.slice(0, 1))
          out.push(
            disk({
              target,
              source,
              overlayExists: file !== 'none',
              overlayHeld: file === 'held',
              retained,
              ...c,
            }),
          );
  return out;
}
const ONE_DISK = diskStates('vda', COMMITS).map((d) => [d]);
// Two disks: only no job or a finished one, to keep the table in the hundreds of thousands.
const TWO_DISKS = diskStates('vda', COMMITS.slice(0, 3)).flatMap((a) =>
  diskStates('vdb', COMMITS.slice(0, 3)).map((b) => [a, b]),
);
const DISK_SETS = [...ONE_DISK, ...TWO_DISKS];
const EXPECTED_WORLDS = JOURNALS.length * DOMAINS.length * DISK_SETS.length * 2 * 2 * 2 * 2;

function* allWorlds(): Generator<LiveWorld> {
  for (const j of JOURNALS)
    for (const domain of DOMAINS)
      for (const disks of DISK_SETS)
        for (const stateSaved of [false, true])
          for (const stateRetained of [false, true])
            for (const pauseDue of [false, true])
              for (const retainDirExists of [false, true])
                yield world({
                  journal: j,
                  domain,
                  disks,
                  stateSaved,
                  stateRetained,
                  pauseDue,
                  retainDirExists,
                });
}

const active = (w: LiveWorld) => w.domain.state === 'running' || w.domain.state === 'paused';
const anyOverlay = (w: LiveWorld) => w.disks.some((d) => d.source === 'overlay');
const allOverlay = (w: LiveWorld) => w.disks.every((d) => d.source === 'overlay');
const allImage = (w: LiveWorld) => w.disks.every((d) => d.source === 'image');
const spent = (w: LiveWorld) =>
  w.disks.some((d) => d.source === 'image' && d.overlayExists && !d.overlayHeld);
const target = (w: LiveWorld, d: AnyDecision) =>
  d.kind === 'act' ? w.disks.find((x) => x.target === d.action.target) : undefined;

type Decisions = {
  snapshot: ReturnType<typeof decideLiveSnapshot>;
  merge: ReturnType<typeof decideLiveMerge>;
  rollback: ReturnType<typeof decideLiveRollback>;
};
type Decider = keyof Decisions;
/** What is wrong with a decision in a world, or nothing. */
type Check = (w: LiveWorld, d: AnyDecision, all: Decisions) => string | false | undefined;

const LISTS: Record<Decider, readonly string[]> = {
  snapshot: LIVE_SNAPSHOT_ACTIONS,
  merge: LIVE_MERGE_ACTIONS,
  rollback: LIVE_ROLLBACK_ACTIONS,
};
const unlisted =
  (decider: Decider): Check =>
  (_, d) =>
    d.kind === 'act' && !LISTS[decider].includes(d.action.kind) && `not in the ${decider} actions`;

const discardsOnlySpent: Check = (w, d) => {
  if (d.kind !== 'act' || d.action.kind !== 'discard-overlay') return;
  const x = target(w, d);
  if (!x) return 'an unknown disk';
  if (x.source !== 'image') return 'an overlay in use';
  if (x.overlayHeld) return 'a held overlay';
  if (!x.overlayExists) return 'a missing overlay';
  if (anyOverlay(w)) return 'before every commit back';
};
const discardsAfterJob: Check = (w, d) =>
  d.kind === 'act' && d.action.kind === 'discard-overlay' && w.domain.job !== undefined && 'while a job runs';

const resumesOnlyPausedAtStart: Check = (w, d) => {
  if (d.kind !== 'act' || d.action.kind !== 'resume') return;
  if (w.domain.state !== 'paused') return 'a VM not paused';
  if (!w.journal || w.journal.wasPaused) return 'a VM paused at the start';
  if (!w.journal.wasRunning) return 'a VM shut off at the start';
  if (w.domain.job) return 'during a job';
};

const commitsOnlyWhatNeedsIt: Check = (w, d) => {
  if (d.kind !== 'act') return;
  const x = target(w, d);
  switch (d.action.kind) {
    case 'start-commit':
      if (x?.source !== 'overlay' || x.job) return 'a disk not on an idle overlay';
      if (x.commits >= MAX_COMMITS) return 'once too often';
      if (!active(w)) return 'on an inactive VM';
      return;
    case 'pivot':
      if (x?.source !== 'overlay' || !x.job || x.job.end <= 0 || x.job.cur < x.job.end) return 'too early';
      return;
    case 'start-paused':
      if (w.domain.state !== 'shut off' || !anyOverlay(w)) return 'a VM with nothing to commit';
      return;
    case 'stop-vm':
      if (!w.journal?.mergeStartedVm || w.domain.state !== 'paused') return 'a VM not ours';
      if (anyOverlay(w)) return 'before the commit back';
      return;
  }
};

/** [what holds, for which decider, the check]. */
const INVARIANTS: [string, Decider, Check][] = [
  ['every snapshot action is in LIVE_SNAPSHOT_ACTIONS', 'snapshot', unlisted('snapshot')],
  ['every merge action is in LIVE_MERGE_ACTIONS', 'merge', unlisted('merge')],
  ['every rollback action is in LIVE_ROLLBACK_ACTIONS', 'rollback', unlisted('rollback')],
  [
    'snapshot never takes a live snapshot over a job, an overlay, a memory file, or past its attempts',
    'snapshot',
    (w, d) => {
      if (d.kind !== 'act' || d.action.kind !== 'live-snapshot') return;
      const j = w.journal;
      if (w.domain.job) return 'over a running job';
      if (w.disks.some((x) => x.source !== 'image')) return 'with a disk not on its image';
      if (w.disks.some((x) => x.overlayExists)) return 'over a leftover overlay';
      if (w.stateSaved) return 'over a memory file';
      if (!active(w)) return 'of an inactive VM';
      if (!j || j.phase !== 'prepared' || j.mode !== 'live' || !j.wasRunning) return 'without its journal';
      if (j.liveError !== undefined || j.liveAttempts >= MAX_LIVE_ATTEMPTS) return 'instead of falling back';
    },
  ],
  [
    'snapshot only waits or pauses while a job runs, and pauses once, when due, a running VM',
    'snapshot',
    (w, d) => {
      const j = w.journal;
      if (d.kind === 'act' && d.action.kind === 'pause') {
        if (w.domain.job !== 'Snapshot' || w.domain.state !== 'running') return 'outside a running Snapshot';
        if (!w.pauseDue) return 'before it is due';
        if (!j || j.pausedByUs) return 'twice';
      }
      const inProgress = j && j.phase === 'prepared' && j.mode === 'live';
      if (w.domain.job && inProgress && d.kind !== 'wait' && (d.kind !== 'act' || d.action.kind !== 'pause'))
        return 'acts while a job runs';
    },
  ],
  [
    'snapshot copies, retains and finishes only while the images stay frozen',
    'snapshot',
    (w, d) => {
      if (d.kind !== 'act') return;
      const j = w.journal;
      const kind = d.action.kind;
      if (!['copy-disk', 'retain-state', 'write-placeholder', 'finish'].includes(kind)) return;
      if (w.domain.job) return 'while a job runs';
      if (!j) return 'without journal';
      if (j.wasRunning) {
        if (!allOverlay(w)) return 'with a disk off its overlay';
        if (!w.stateSaved && !w.stateRetained) return 'without the memory file';
        if (w.domain.state === 'paused' && !j.wasPaused) return 'leaving the VM paused';
        if (kind === 'write-placeholder') return 'a placeholder for a running VM';
      } else {
        if (active(w) || !allImage(w)) return 'of a VM started meanwhile';
        if (w.disks.some((x) => !x.imageUnchanged)) return 'of a changed image';
        if (kind === 'retain-state') return 'a memory file of a shut-off VM';
      }
      if (kind === 'copy-disk' && target(w, d)?.retained !== false) return 'a disk already copied';
      if (kind !== 'copy-disk' && w.disks.some((x) => !x.retained)) return 'before every copy';
      if (kind === 'finish' && !w.stateRetained) return 'without the retained memory file';
    },
  ],
  [
    'snapshot never guesses for a VM with some disks on overlays and some on images',
    'snapshot',
    (w, d) =>
      anyOverlay(w) &&
      !allOverlay(w) &&
      d.kind === 'act' &&
      !['begin', 'save-xml', 'save-ldif', 'pause'].includes(d.action.kind) &&
      'guesses',
  ],
  ['snapshot discards only a spent overlay', 'snapshot', discardsOnlySpent],
  ['snapshot discards no overlay during a job', 'snapshot', discardsAfterJob],
  ['merge discards only a spent overlay', 'merge', discardsOnlySpent],
  ['rollback discards only a spent overlay', 'rollback', discardsOnlySpent],
  ['rollback discards no overlay during a job', 'rollback', discardsAfterJob],
  [
    'snapshot resumes only a paused VM that was not paused at the start',
    'snapshot',
    resumesOnlyPausedAtStart,
  ],
  [
    'rollback resumes only a paused VM that was not paused at the start',
    'rollback',
    resumesOnlyPausedAtStart,
  ],
  [
    'merge finishes only with every disk on its image, no spent overlay left and its VM stopped',
    'merge',
    (w, d) => {
      if (d.kind !== 'act' || d.action.kind !== 'finish') return;
      if (anyOverlay(w)) return 'with a disk on its overlay';
      if (spent(w)) return 'leaving a spent overlay';
      if (w.journal?.mergeStartedVm && w.domain.state === 'paused') return 'leaving its VM running';
    },
  ],
  ['merge commits, pivots, starts and stops only what needs it', 'merge', commitsOnlyWhatNeedsIt],
  ['rollback commits, pivots, starts and stops only what needs it', 'rollback', commitsOnlyWhatNeedsIt],
  [
    'merge acts or waits only on a snapshotted journal',
    'merge',
    (w, d) => (d.kind === 'act' || d.kind === 'wait') && w.journal?.phase !== 'snapshotted' && 'too early',
  ],
  [
    'rollback is never rolled back while a disk is on an overlay, a job runs or anything is left',
    'rollback',
    (w, d) => {
      if (d.kind !== 'done' || d.result !== 'rolled-back') return;
      const j = w.journal;
      if (anyOverlay(w)) return 'with a disk on its overlay';
      if (w.domain.job) return 'while a job runs';
      if (spent(w)) return 'leaving a spent overlay';
      if (w.retainDirExists || w.stateSaved) return 'leaving files';
      if (j?.wasRunning && !j.wasPaused && j.pausedByUs && w.domain.state === 'paused')
        return 'leaving the VM paused by us';
      if (j?.mergeStartedVm && w.domain.state === 'paused') return 'leaving a VM it started';
    },
  ],
  [
    'rollback only waits while a libvirt job runs on a snapshot in progress',
    'rollback',
    (w, d) => w.domain.job && (!w.journal || w.journal.phase === 'prepared') && d.kind !== 'wait' && 'acts',
  ],
  [
    'rollback removes the retain directory only with every disk back on its image',
    'rollback',
    (w, d) => {
      if (d.kind !== 'act' || d.action.kind !== 'remove-retain-dir') return;
      if (anyOverlay(w)) return 'with a disk on its overlay';
      if (w.domain.job) return 'while a job runs';
      if (spent(w)) return 'before the spent overlays';
    },
  ],
  [
    'rollback completes a snapshot in progress only when the snapshot then finishes it',
    'rollback',
    (w, d, all) => {
      const j = w.journal;
      if (d.kind !== 'done' || d.result !== 'completed' || !j || j.phase !== 'prepared' || j.mode !== 'live')
        return;
      if (!j.wasRunning || !allOverlay(w)) return 'a VM not on its overlays';
      if (w.disks.some((x) => !x.retained)) return 'with a copy missing';
      if (!w.stateSaved && !w.stateRetained) return 'without its memory file';
      const s = all.snapshot;
      if (s.kind !== 'act' || !['retain-state', 'finish'].includes(s.action.kind))
        return `which the snapshot does not finish (${next(s)})`;
    },
  ],
];

/** One pass over every world: each decider once, every invariant on its decision. */
function checkEveryWorld(): { checked: number[]; wrong: string[][] } {
  const checked = INVARIANTS.map(() => 0);
  const wrong: string[][] = INVARIANTS.map(() => []);
  for (const w of allWorlds()) {
    const all: Decisions = {
      snapshot: decideLiveSnapshot(w),
      merge: decideLiveMerge(w),
      rollback: decideLiveRollback(w),
    };
    INVARIANTS.forEach(([, decider, check], i) => {
      checked[i]!++;
      const d = all[decider];
      const why = check(w, d, all);
      if (why && wrong[i]!.length < 3) wrong[i]!.push(`${why}: ${next(d)} in ${JSON.stringify(w)}`);
    });
  }
  return { checked, wrong };
}

describe('over every combination of world states', () => {
  let result: ReturnType<typeof checkEveryWorld> | undefined;
  const results = () => (result ??= checkEveryWorld());

  it('generates hundreds of thousands of worlds', () => {
    expect(EXPECTED_WORLDS).toBeGreaterThan(100_000);
    let n = 0;
    for (const _ of allWorlds()) n++;
    expect(n).toBe(EXPECTED_WORLDS);
  });

  it.each(INVARIANTS.map(([name], i) => [name, i] as const))('%s', (_, i) => {
    const { checked, wrong } = results();
    expect(wrong[i]).toEqual([]);
    expect(checked[i]).toBe(EXPECTED_WORLDS);
  });
});
