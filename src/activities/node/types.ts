import type { BackupPlan } from '../../domain/plan';
import type { DiskRecord } from '../../domain/vm';
import type { LiveGroupRef } from './live-group';

/** Everything a node activity needs about one VM's run; built by the workflow from directory data. */
export interface VmRunInput {
  vm: string;
  runDate: string;
  disks: DiskRecord[];
  plan: BackupPlan;
}

export interface SnapshotInput extends VmRunInput {
  /** The VM's directory subtree at the snapshot instant, written next to the state file. */
  ldif: string;
  /** Live mode in a multi-VM run: the VMs of this node are paused at one instant. */
  liveGroup?: LiveGroupRef | undefined;
}

export interface InspectResult {
  state: 'running' | 'paused' | 'shut off';
  memoryBytes: number;
}

export interface SnapshotResult {
  wasRunning: boolean;
  /** Time the VM was not running, in ms (0 for a VM that was shut down). */
  downtimeMs: number;
  /** Time of the whole snapshot step, in ms. */
  snapshotMs: number;
  /** How the snapshot was taken (absent in results from before live mode: `save`). */
  mode?: 'live' | 'save' | undefined;
  /** Why a VM whose plan asks for live mode was snapshotted in save mode. */
  fallback?: string | undefined;
  /** Live mode: when libvirt paused the VM for its last pages (epoch ms, its lifecycle event). */
  pausedAt?: number | undefined;
  /** Live mode: the copy did not end on its own within its bound (or the group's instant), we paused it. */
  forcedPause?: boolean | undefined;
}

export type AbortSnapshotResult = 'rolled-back' | 'completed';

export interface MergeResult {
  mergedDisks: string[];
  mergeMs: number;
}

export interface RetainResult {
  backupDir: string;
  files: string[];
  bytes: number;
}
