import type { VmFacts } from '../domain/status';
import { directory } from './activities';

/** The directory's side of `vmbackup status`: every VM (of one node) with its plan and runs. */
export async function fleetStatus(input: { node?: string | undefined }): Promise<VmFacts[]> {
  return directory.fleetStatus(input.node);
}
