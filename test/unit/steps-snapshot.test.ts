import { describe, expect, it } from 'vitest';
import {
  decideRollback,
  decideSnapshot,
  ROLLBACK_ACTIONS,
  SNAPSHOT_ACTIONS,
  type DomainView,
  type SnapshotDiskView,
  type SnapshotWorld,
} from '../../src/domain/steps/snapshot';

const disk = (over: Partial<SnapshotDiskView> = {}): SnapshotDiskView => ({
  target: 'vda',
  live: 'image',
  retained: false,
  prepared: false,
  held: { live: false, retained: false },
  overlayHasData: false,
  ...over,
});

const running: DomainView = { state: 'running', reason: 'booted' };
const saved: DomainView = { state: 'shut off', reason: 'saved' };
const off: DomainView = { state: 'shut off', reason: 'shutdown' };

const world = (over: Partial<SnapshotWorld> = {}): SnapshotWorld => ({
  vm: 'vm1',
  journal: { phase: 'prepared', wasRunning: true, wasPaused: false },
  domain: running,
  disks: [disk({ prepared: true, held: { live: true, retained: false } })],
  retainDirExists: true,
  xmlSaved: true,
  ldifSaved: true,
  ldifGiven: true,
  stateSaved: false,
  stateRetained: false,
  ...over,
});

const next = (d: ReturnType<typeof decideSnapshot> | ReturnType<typeof decideRollback>) =>
  d.kind === 'act' ? `${d.action.kind}${d.action.target ? ` ${d.action.target}` : ''}` : d.kind;

describe('decideSnapshot picks the next action from the world', () => {
  it.each<[string, Partial<SnapshotWorld>, string]>([
    [
      'a fresh run begins',
      { journal: undefined, retainDirExists: false, xmlSaved: false, ldifSaved: false },
      'begin',
    ],
    ['the XML comes first', { xmlSaved: false }, 'save-xml'],
    ['then the directory entry', { ldifSaved: false }, 'save-ldif'],
    [
      'overlays are prepared before the VM stops',
      { disks: [disk({ held: { live: true, retained: false } })] },
      'prepare-overlay vda',
    ],
    ['a running VM with its overlays ready is saved', {}, 'save-state'],
    [
      'a save still running in libvirtd after a kill is waited for, never repeated',
      { domain: { state: 'paused', reason: 'saving', job: 'Save' } },
      'wait',
    ],
    [
      'a saved VM has its disk moved',
      { domain: saved, stateSaved: true, disks: [disk({ prepared: true })] },
      'move-disk vda',
    ],
    [
      'a moved disk gets its overlay',
      { domain: saved, stateSaved: true, disks: [disk({ live: 'missing', retained: true, prepared: true })] },
      'place-overlay vda',
    ],
    [
      'an overlay lost in a crash is prepared again before it is placed',
      { domain: saved, stateSaved: true, disks: [disk({ live: 'missing', retained: true })] },
      'prepare-overlay vda',
    ],
    [
      'with every disk on its overlay the VM is restored',
      { domain: saved, stateSaved: true, disks: [disk({ live: 'overlay', retained: true })] },
      'restore-vm',
    ],
    [
      'a VM running on its overlays gets its state moved to the retain directory',
      {
        stateSaved: true,
        disks: [disk({ live: 'overlay', retained: true, held: { live: true, retained: true } })],
      },
      'retain-state',
    ],
    [
      'and then the snapshot is finished',
      {
        stateSaved: true,
        stateRetained: true,
        disks: [disk({ live: 'overlay', retained: true, held: { live: true, retained: true } })],
      },
      'finish',
    ],
    [
      'a shut-off VM gets a placeholder once its disks are swapped',
      {
        journal: { phase: 'prepared', wasRunning: false, wasPaused: false },
        domain: off,
        disks: [disk({ live: 'overlay', retained: true })],
      },
      'write-placeholder',
    ],
    [
      'a finished snapshot is done',
      { journal: { phase: 'snapshotted', wasRunning: true, wasPaused: false } },
      'done',
    ],
    [
      'a VM started while its disks were swapped is refused (then rolled back)',
      {
        journal: { phase: 'prepared', wasRunning: false, wasPaused: false },
        disks: [disk({ live: 'overlay', retained: true, held: { live: false, retained: true } })],
      },
      'refuse',
    ],
    ['a VM that disappeared is refused', { domain: { state: 'absent', reason: '' } }, 'refuse'],
    [
      'a VM shut off by someone else without its state is refused',
      { domain: off, disks: [disk({ prepared: true })] },
      'refuse',
    ],
  ])('%s', (_, over, expected) => {
    expect(next(decideSnapshot(world(over)))).toBe(expected);
  });
});

describe('decideRollback puts everything back', () => {
  it.each<[string, Partial<SnapshotWorld>, string]>([
    [
      'a prepared overlay whose backing file does not exist yet is discarded without reading it',
      { disks: [disk({ prepared: true, held: { live: true, retained: false } })] },
      'discard-prepared vda',
    ],
    [
      'an unused overlay at the live path is discarded',
      { domain: saved, stateSaved: true, disks: [disk({ live: 'overlay', retained: true })] },
      'discard-overlay vda',
    ],
    [
      'a moved disk is moved back',
      { domain: saved, stateSaved: true, disks: [disk({ live: 'missing', retained: true })] },
      'move-back vda',
    ],
    [
      'a saved VM on its disks again is restored from its state',
      { domain: saved, stateSaved: true, disks: [disk()] },
      'restore-original',
    ],
    ['a VM stopped without state is started', { domain: off, disks: [disk()] }, 'start-vm'],
    [
      'a stale state of a VM that runs again is removed',
      { stateSaved: true, disks: [disk({ held: { live: true, retained: false } })] },
      'remove-state',
    ],
    [
      'then the retain directory goes',
      { disks: [disk({ held: { live: true, retained: false } })] },
      'remove-retain-dir',
    ],
    [
      'and the rollback is done',
      { retainDirExists: false, disks: [disk({ held: { live: true, retained: false } })] },
      'done',
    ],
    [
      'a VM already running on its overlays is completed instead',
      {
        stateSaved: true,
        disks: [disk({ live: 'overlay', retained: true, held: { live: true, retained: true } })],
      },
      'done',
    ],
    [
      'an overlay holding guest data is never discarded',
      { domain: off, disks: [disk({ live: 'overlay', retained: true, overlayHasData: true })] },
      'refuse',
    ],
    [
      'a VM started before its disk was moved gets the disk back under it',
      {
        journal: { phase: 'prepared', wasRunning: false, wasPaused: false },
        disks: [disk({ live: 'overlay', retained: true, held: { live: false, retained: true } })],
      },
      'discard-overlay vda',
    ],
    [
      'a save still running is waited for',
      { domain: { state: 'paused', reason: 'saving', job: 'Save' } },
      'wait',
    ],
  ])('%s', (_, over, expected) => {
    expect(next(decideRollback(world(over)))).toBe(expected);
  });
});

/** Every world a crash can leave for a one-disk VM, and then some. */
function* allWorlds(): Generator<SnapshotWorld> {
  const journals: SnapshotWorld['journal'][] = [
    undefined,
    { phase: 'prepared', wasRunning: true, wasPaused: false },
    { phase: 'prepared', wasRunning: true, wasPaused: true },
    { phase: 'prepared', wasRunning: false, wasPaused: false },
    { phase: 'snapshotted', wasRunning: true, wasPaused: false },
  ];
  const domains: DomainView[] = [
    running,
    { state: 'paused', reason: 'user' },
    { state: 'paused', reason: 'saving', job: 'Save' },
    saved,
    off,
    { state: 'absent', reason: '' },
  ];
  for (const journal of journals)
    for (const domain of domains)
      for (const live of ['image', 'overlay', 'missing'] as const)
        for (const retained of [false, true])
          for (const prepared of [false, true])
            for (const held of ['none', 'live', 'retained'] as const)
              for (const overlayHasData of [false, true])
                for (const stateSaved of [false, true])
                  for (const stateRetained of [false, true])
                    for (const xmlSaved of [false, true]) {
                      const active = domain.state === 'running' || domain.state === 'paused';
                      yield world({
                        journal,
                        domain,
                        xmlSaved,
                        stateSaved,
                        stateRetained,
                        disks: [
                          disk({
                            live,
                            retained,
                            prepared,
                            overlayHasData,
                            held: {
                              live: active && held === 'live' && live !== 'missing',
                              retained: active && held === 'retained' && retained,
                            },
                          }),
                        ],
                      });
                    }
}

describe('over every combination of world states', () => {
  const worlds = [...allWorlds()];
  const active = (w: SnapshotWorld) => w.domain.state === 'running' || w.domain.state === 'paused';

  it('covers tens of thousands of worlds', () => {
    expect(worlds.length).toBeGreaterThan(10_000);
  });

  it('snapshot never moves a disk or places an overlay under an active VM, and never saves twice', () => {
    for (const w of worlds) {
      const d = decideSnapshot(w);
      if (d.kind !== 'act') continue;
      expect(SNAPSHOT_ACTIONS).toContain(d.action.kind);
      if (['move-disk', 'place-overlay', 'restore-vm'].includes(d.action.kind)) expect(active(w)).toBe(false);
      if (d.action.kind === 'place-overlay') expect(w.disks[0]!.retained && w.disks[0]!.prepared).toBe(true);
      if (d.action.kind === 'save-state') {
        expect(w.domain.job).toBeUndefined();
        expect(w.disks.every((x) => x.live === 'image' && !x.retained && x.prepared)).toBe(true);
      }
    }
  });

  it('snapshot finishes only with the VM as it was and its state kept', () => {
    for (const w of worlds) {
      const d = decideSnapshot(w);
      if (d.kind !== 'act' || d.action.kind !== 'finish') continue;
      expect(w.stateRetained).toBe(true);
      expect(w.disks.every((x) => x.live === 'overlay' && x.retained)).toBe(true);
      if (w.journal!.wasRunning) expect(active(w) && w.disks.every((x) => x.held.live)).toBe(true);
    }
  });

  it('rollback never discards a file QEMU has open or one that holds guest data, and never loses a disk', () => {
    for (const w of worlds) {
      const d = decideRollback(w);
      if (d.kind !== 'act') continue;
      expect(ROLLBACK_ACTIONS).toContain(d.action.kind);
      const x = w.disks[0]!;
      if (d.action.kind === 'discard-overlay') {
        expect(x.held.live || x.overlayHasData).toBe(false);
        expect(x.retained).toBe(true);
      }
      if (d.action.kind === 'move-back') expect(x.live).toBe('missing');
      // The retain directory holds no image any more when it is removed.
      if (d.action.kind === 'remove-retain-dir') expect(x.retained || x.live !== 'image').toBe(false);
      if (d.action.kind === 'restore-original' || d.action.kind === 'start-vm') {
        expect(active(w)).toBe(false);
        expect(x.live === 'image' && !x.retained).toBe(true);
      }
    }
  });

  it('rollback ends only with the VM running again if it was running', () => {
    for (const w of worlds) {
      const d = decideRollback(w);
      if (d.kind === 'done' && d.result === 'rolled-back' && w.journal?.wasRunning)
        expect(active(w)).toBe(true);
    }
  });
});
