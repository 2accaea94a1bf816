import { promises as fs } from 'node:fs';
import path from 'node:path';
import { log } from '@temporalio/activity';
import type { DirectoryConfig } from '../../config';
import { withDirectory } from '../../directory/connection';
import { StoneyTree } from '../../directory/dn';
import { BackupError } from '../../domain/errors';
import { assertVmName } from '../../domain/names';
import { decidePlacement, type PlacementView } from '../../domain/placement';

/** Checks, with the node's own read of the directory, that a VM belongs to this node. */
export type PlacementCheck = (vm: string, runBegun: () => Promise<boolean>) => Promise<void>;

export function directoryPlacement(config: DirectoryConfig, node: string): PlacementCheck {
  const tree = new StoneyTree(config.baseDn);
  return async (vm, runBegun) => {
    assertVmName(vm);
    const verdict = decidePlacement(vm, node, await observePlacement(config, tree, vm, runBegun));
    if (!verdict.act) throw verdict.error;
    if (verdict.unchecked)
      log.warn(`directory away; continuing the run node ${node} began for ${vm}`, { why: verdict.unchecked });
  };
}

async function observePlacement(
  config: DirectoryConfig,
  tree: StoneyTree,
  vm: string,
  runBegun: () => Promise<boolean>,
): Promise<PlacementView> {
  try {
    const entry = await withDirectory(config, (dir) => dir.read(tree.vm(vm), ['sstNode']));
    return entry ? { kind: 'entry', node: entry.attributes['sstnode']?.[0] } : { kind: 'no-entry' };
  } catch (err) {
    // Wrong credentials or a refused read do not heal by waiting.
    if (err instanceof BackupError && !err.transient) throw err;
    return { kind: 'unreachable', why: (err as Error).message, runBegun: await runBegun() };
  }
}

/** A journal the node wrote in the run's retain directory: a checked step began the run. */
export async function journalIn(retainDir: string, names: readonly string[]): Promise<boolean> {
  for (const name of names) {
    try {
      if ((await fs.lstat(path.join(retainDir, name))).isFile()) return true;
    } catch {
      // absent
    }
  }
  return false;
}
