import { BackupError, ErrorCode } from './errors';

/** What the node's own read of the directory said about a VM it was asked to act on. */
export type PlacementView =
  | { kind: 'entry'; node: string | undefined }
  | { kind: 'no-entry' }
  /** The directory is away; `runBegun`: a node-written journal shows a checked step began this run. */
  | { kind: 'unreachable'; why: string; runBegun: boolean };

export type PlacementVerdict = { act: true; unchecked?: string } | { act: false; error: BackupError };

/**
 * A node acts only on VMs whose directory entry names it: whoever can reach its task queue
 * must not make it touch another node's VMs. A step that continues a run the node itself
 * began (after this check) goes on while the directory is away; a new one waits for it.
 */
export function decidePlacement(vm: string, node: string, view: PlacementView): PlacementVerdict {
  switch (view.kind) {
    case 'entry':
      if (view.node === node) return { act: true };
      return {
        act: false,
        error: new BackupError(
          ErrorCode.cannotFindMachine,
          view.node === undefined
            ? `VM ${vm}: its directory entry names no node (sstNode); node ${node} does not act on it`
            : `VM ${vm} belongs to node ${view.node} in the directory, not to node ${node}: refused`,
        ),
      };
    case 'no-entry':
      return {
        act: false,
        error: new BackupError(
          ErrorCode.cannotFindMachine,
          `VM ${vm} is not in the directory: node ${node} does not act on it`,
        ),
      };
    case 'unreachable':
      if (view.runBegun) return { act: true, unchecked: view.why };
      return {
        act: false,
        error: new BackupError(
          ErrorCode.directoryConnectionFailed,
          `cannot check in the directory that VM ${vm} belongs to node ${node}: ${view.why}`,
          true,
        ),
      };
  }
}
