import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/domain/errors';
import { decidePlacement } from '../../src/domain/placement';

describe('decidePlacement', () => {
  it('acts on a VM whose entry names this node', () => {
    expect(decidePlacement('vm-1', 'node-a', { kind: 'entry', node: 'node-a' })).toEqual({ act: true });
  });

  it('refuses a VM of another node, naming both, with a code that is not retried', () => {
    const v = decidePlacement('vm-1', 'node-a', { kind: 'entry', node: 'node-b' });
    expect(v.act).toBe(false);
    if (v.act) return;
    expect(v.error.code).toBe(ErrorCode.cannotFindMachine);
    expect(v.error.transient).toBe(false);
    expect(v.error.message).toContain('belongs to node node-b in the directory, not to node node-a');
  });

  it('refuses a VM whose entry names no node, and one without entry', () => {
    expect(decidePlacement('vm-1', 'node-a', { kind: 'entry', node: undefined }).act).toBe(false);
    const v = decidePlacement('vm-1', 'node-a', { kind: 'no-entry' });
    expect(v.act).toBe(false);
  });

  it('waits for an absent directory before a new run, with a retried error', () => {
    const v = decidePlacement('vm-1', 'node-a', {
      kind: 'unreachable',
      why: 'ECONNREFUSED',
      runBegun: false,
    });
    expect(v.act).toBe(false);
    if (v.act) return;
    expect(v.error.code).toBe(ErrorCode.directoryConnectionFailed);
    expect(v.error.transient).toBe(true);
  });

  it('continues a run it began while the directory is away, saying so', () => {
    expect(
      decidePlacement('vm-1', 'node-a', { kind: 'unreachable', why: 'ECONNREFUSED', runBegun: true }),
    ).toEqual({ act: true, unchecked: 'ECONNREFUSED' });
  });
});
