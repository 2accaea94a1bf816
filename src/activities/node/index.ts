import type { NodeConfig } from '../../config';
import { asFailure } from '../failure';
import { nodeDeps } from './context';
import { merge } from './merge';
import { retain } from './retain';
import { inspectForSnapshot, rollbackSnapshot, snapshot } from './snapshot';
import type { SnapshotInput, VmRunInput } from './types';

/** The hypervisor activities a node worker runs on its own task queue. */
export function createNodeActivities(config: NodeConfig) {
  const deps = nodeDeps(config);
  return {
    inspectForSnapshot: asFailure((input: VmRunInput) => inspectForSnapshot(deps, input)),
    snapshot: asFailure((input: SnapshotInput) => snapshot(deps, input)),
    rollbackSnapshot: asFailure((input: VmRunInput) => rollbackSnapshot(deps, input)),
    merge: asFailure((input: VmRunInput) => merge(deps, input)),
    retain: asFailure((input: VmRunInput) => retain(deps, input)),
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
