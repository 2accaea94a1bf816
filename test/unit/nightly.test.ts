import { describe, expect, it } from 'vitest';
import { selectForNightly, type NightlyCandidate } from '../../src/domain/nightly';

const vmDnOf = (vm: string) =>
  `sstVirtualMachine=${vm},ou=virtual machines,ou=virtualization,ou=services,o=stepping-stone,c=ch`;

const EXCLUDED = 'excluded from backup (sstBackupExcludeFromBackup: TRUE)';

function candidate(vm: string, node: string, overrides: Partial<NightlyCandidate> = {}): NightlyCandidate {
  return { vm, node, excluded: false, ...overrides };
}

const completeRun = { runDate: '20240101T030000Z', mode: 'finished', returnValue: 0, complete: true };

describe('selectForNightly', () => {
  it('selects nothing and skips nothing for no candidates', () => {
    expect(selectForNightly([], vmDnOf)).toEqual({ byNode: {}, skipped: [] });
  });

  it('keeps a VM that has no run yet', () => {
    expect(selectForNightly([candidate('web01', 'node-a')], vmDnOf)).toEqual({
      byNode: { 'node-a': ['web01'] },
      skipped: [],
    });
  });

  it('keeps a VM whose last run is complete', () => {
    expect(selectForNightly([candidate('web01', 'node-a', { lastRun: completeRun })], vmDnOf)).toEqual({
      byNode: { 'node-a': ['web01'] },
      skipped: [],
    });
  });

  it('groups the VMs by node, each list sorted by VM name', () => {
    const selection = selectForNightly(
      [
        candidate('web02', 'node-b'),
        candidate('db01', 'node-a'),
        candidate('web01', 'node-a'),
        candidate('app01', 'node-b'),
        candidate('cache', 'node-c'),
      ],
      vmDnOf,
    );
    expect(selection.byNode).toEqual({
      'node-a': ['db01', 'web01'],
      'node-b': ['app01', 'web02'],
      'node-c': ['cache'],
    });
    expect(selection.skipped).toEqual([]);
  });

  it('skips an excluded VM, giving the attribute as the reason', () => {
    expect(
      selectForNightly(
        [candidate('web01', 'node-a'), candidate('web02', 'node-a', { excluded: true })],
        vmDnOf,
      ),
    ).toEqual({
      byNode: { 'node-a': ['web01'] },
      skipped: [{ vm: 'web02', reason: EXCLUDED }],
    });
  });

  it('leaves a node out when all its VMs are skipped', () => {
    const selection = selectForNightly([candidate('only', 'node-z', { excluded: true })], vmDnOf);
    expect(selection.byNode).toEqual({});
    expect(Object.keys(selection.byNode)).toEqual([]);
  });

  it('skips a VM whose last run is incomplete, naming the date, mode, return value and leaf to delete', () => {
    const selection = selectForNightly(
      [
        candidate('web01', 'node-a', {
          lastRun: { runDate: '20240105T030000Z', mode: 'snapshotted', returnValue: 5, complete: false },
        }),
      ],
      vmDnOf,
    );
    expect(selection).toEqual({
      byNode: {},
      skipped: [
        {
          vm: 'web01',
          reason:
            'last backup 20240105T030000Z did not finish cleanly (mode snapshotted, return value 5): ' +
            'check the VM and its retain directory, then delete the leaf ' +
            'ou=20240105T030000Z,ou=backup,sstVirtualMachine=web01,ou=virtual machines,ou=virtualization,' +
            'ou=services,o=stepping-stone,c=ch to include it again',
        },
      ],
    });
  });

  it('backs up again a VM whose last run failed before the node changed anything, and says so', () => {
    const selection = selectForNightly(
      [
        candidate('web01', 'node-a', {
          lastRun: {
            runDate: '20240105T030000Z',
            mode: 'snapshot',
            returnValue: 23,
            complete: false,
            changedNothing: true,
          },
        }),
      ],
      vmDnOf,
    );
    expect(selection).toEqual({
      byNode: { 'node-a': ['web01'] },
      skipped: [],
      retried: [
        {
          vm: 'web01',
          reason:
            'last backup 20240105T030000Z failed before anything was changed (return value 23): trying again',
        },
      ],
    });
  });

  it('writes a dash for the return value of an incomplete run that has none', () => {
    const [skip] = selectForNightly(
      [
        candidate('db01', 'node-b', {
          lastRun: { runDate: '20240106T030000Z', mode: 'merging', returnValue: undefined, complete: false },
        }),
      ],
      vmDnOf,
    ).skipped;
    expect(skip?.reason).toBe(
      'last backup 20240106T030000Z did not finish cleanly (mode merging, return value -): ' +
        `check the VM and its retain directory, then delete the leaf ou=20240106T030000Z,ou=backup,${vmDnOf('db01')} to include it again`,
    );
  });

  it('asks vmDnOf for the DN of the skipped VM', () => {
    const asked: string[] = [];
    const [skip] = selectForNightly(
      [
        candidate('web01', 'node-a'),
        candidate('web02', 'node-a', {
          lastRun: { runDate: '20240105T030000Z', mode: 'finished', returnValue: 11, complete: false },
        }),
      ],
      (vm) => {
        asked.push(vm);
        return `cn=${vm},dc=example`;
      },
    ).skipped;
    expect(asked).toEqual(['web02']);
    expect(skip?.reason).toContain(
      'delete the leaf ou=20240105T030000Z,ou=backup,cn=web02,dc=example to include',
    );
  });

  it('skips a VM with a problem, giving the problem as the reason', () => {
    expect(
      selectForNightly(
        [candidate('bad', '', { problem: 'cannot be backed up: sstNode is not a valid node name: ""' })],
        vmDnOf,
      ),
    ).toEqual({
      byNode: {},
      skipped: [{ vm: 'bad', reason: 'cannot be backed up: sstNode is not a valid node name: ""' }],
    });
  });

  it('gives the problem as the reason even when the VM is also excluded and its last run incomplete', () => {
    const [skip] = selectForNightly(
      [
        candidate('bad', 'node-a', {
          problem: 'cannot be backed up: broken',
          excluded: true,
          lastRun: {
            runDate: '20240105T030000Z',
            mode: 'snapshotting',
            returnValue: undefined,
            complete: false,
          },
        }),
      ],
      vmDnOf,
    ).skipped;
    expect(skip).toEqual({ vm: 'bad', reason: 'cannot be backed up: broken' });
  });

  it('gives the exclusion as the reason for an excluded VM whose last run is incomplete', () => {
    const [skip] = selectForNightly(
      [
        candidate('web01', 'node-a', {
          excluded: true,
          lastRun: {
            runDate: '20240105T030000Z',
            mode: 'snapshotting',
            returnValue: undefined,
            complete: false,
          },
        }),
      ],
      vmDnOf,
    ).skipped;
    expect(skip).toEqual({ vm: 'web01', reason: EXCLUDED });
  });

  it('lists the skipped VMs sorted by name', () => {
    const incomplete = {
      runDate: '20240105T030000Z',
      mode: 'retaining',
      returnValue: undefined,
      complete: false,
    };
    const selection = selectForNightly(
      [
        candidate('zulu', 'node-a', { excluded: true }),
        candidate('mike', 'node-b', { problem: 'cannot be backed up: x' }),
        candidate('alpha', 'node-a', { lastRun: incomplete }),
        candidate('kilo', 'node-a'),
      ],
      vmDnOf,
    );
    expect(selection.skipped.map((s) => s.vm)).toEqual(['alpha', 'mike', 'zulu']);
    expect(selection.byNode).toEqual({ 'node-a': ['kilo'] });
  });

  it('sorts a mixed set into selected and skipped VMs', () => {
    const selection = selectForNightly(
      [
        candidate('web03', 'node-b', { lastRun: completeRun }),
        candidate('web02', 'node-a', { excluded: true }),
        candidate('web01', 'node-a', { lastRun: completeRun }),
        candidate('web04', 'node-b', {
          lastRun: { runDate: '20240102T030000Z', mode: 'merged', returnValue: 11, complete: false },
        }),
        candidate('web05', 'node-b'),
      ],
      vmDnOf,
    );
    expect(selection.byNode).toEqual({ 'node-a': ['web01'], 'node-b': ['web03', 'web05'] });
    expect(selection.skipped).toEqual([
      { vm: 'web02', reason: EXCLUDED },
      {
        vm: 'web04',
        reason:
          'last backup 20240102T030000Z did not finish cleanly (mode merged, return value 11): ' +
          `check the VM and its retain directory, then delete the leaf ou=20240102T030000Z,ou=backup,${vmDnOf('web04')} to include it again`,
      },
    ]);
  });

  it('does not reorder the candidates it is given', () => {
    const candidates = [candidate('b', 'n'), candidate('a', 'n')];
    selectForNightly(candidates, vmDnOf);
    expect(candidates.map((c) => c.vm)).toEqual(['b', 'a']);
  });
});

describe('selectForNightly and verification', () => {
  it('backs up a VM whose newest backup failed verification, and reports it as unproven', () => {
    const s = selectForNightly(
      [
        {
          vm: 'vm1',
          node: 'n1',
          excluded: false,
          lastRun: { runDate: '20260101T030000Z', mode: 'finished', returnValue: 0, complete: true },
          failedVerification: {
            runDate: '20260101T030000Z',
            checkedAt: '2026-01-01T13:30:00.000Z',
            summary: 'vm1.state.20260101T030000Z: SHA-256 differs',
          },
        },
        { vm: 'vm2', node: 'n1', excluded: false },
      ],
      (vm) => `sstVirtualMachine=${vm}`,
    );
    expect(s.byNode).toEqual({ n1: ['vm1', 'vm2'] });
    expect(s.unproven).toEqual([
      {
        vm: 'vm1',
        reason:
          'newest backup 20260101T030000Z FAILED verification at 2026-01-01T13:30:00.000Z (vm1.state.20260101T030000Z: SHA-256 differs)',
      },
    ]);
  });

  it('has no unproven list when every newest backup is fine', () => {
    expect(selectForNightly([{ vm: 'vm2', node: 'n1', excluded: false }], (vm) => vm)).not.toHaveProperty(
      'unproven',
    );
  });
});
