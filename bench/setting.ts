import { MockActivityEnvironment } from '@temporalio/testing';
import { nodeDeps } from '../src/activities/node/context';
import { nodeConfig } from '../src/config';
import { adminDirectoryConfig } from '../src/dev/admin-directory';
import { GuestIo } from '../src/dev/guest-io';
import { StoneyTree } from '../src/directory/dn';

export function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (source .dev/env, or use npm run bench)`);
  return v;
}

/**
 * What a bench that drives the node's activities itself needs: the dev services from
 * `.dev/env`, the root DN (it creates the bench's VMs), and node activities run as
 * Temporal runs them (heartbeats included) without a worker.
 */
export function benchSetting() {
  const directory = adminDirectoryConfig();
  const node = nodeConfig();
  const roots = {
    retainRoot: need('VMBACKUP_RETAIN_ROOT'),
    backupRoot: need('VMBACKUP_BACKUP_ROOT'),
    ramDisk: need('VMBACKUP_RAMDISK'),
  };
  const deps = nodeDeps(node);
  const activity = new MockActivityEnvironment();
  const inActivity = <A, R>(fn: (input: A) => Promise<R>, input: A) => activity.run(fn, input) as Promise<R>;
  return {
    directory,
    node,
    roots,
    deps,
    guest: new GuestIo(deps.virsh),
    tree: new StoneyTree(directory.baseDn),
    inActivity,
  };
}
