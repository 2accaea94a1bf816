import type { VmRunInput } from './types';

/** Whether the group this VM's live snapshot belongs to has reached its shared pause instant. */
export function liveGroupDue(_input: VmRunInput): boolean {
  return false;
}
