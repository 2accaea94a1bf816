// Runs the durable file operations of src/activities/node/files.ts one after the other, for
// test/integration/durability.test.ts to check in an strace of this process.
//   node --import tsx test/support/durability-ops.ts <dir with a/ and b/> <dir on another filesystem>
// The test creates the input files a/r, a/c and a/m beforehand.
import { accessSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  durableCopy,
  durableRename,
  durableUnlink,
  ensureDir,
  moveFile,
  writeFileAtomic,
} from '../../src/activities/node/files';

/** The steps in the order they run; the test expects exactly these markers in the trace. */
export const DURABILITY_STEPS = [
  'rename',
  'unlink',
  'write-atomic',
  'copy',
  'move-same-fs',
  'move-other-fs',
  'ensure-dir',
] as const;
export type DurabilityStep = (typeof DURABILITY_STEPS)[number];

/**
 * A failed access of `/MARKER-<name>` shows in the trace as a faccessat line: everything
 * between two markers is what one helper did before it returned.
 */
function marker(name: string): void {
  try {
    accessSync(`/MARKER-${name}`);
  } catch {
    // ENOENT is the point: the path never exists.
  }
}

async function main(base: string, other: string): Promise<void> {
  const a = path.join(base, 'a');
  const b = path.join(base, 'b');
  const steps: Record<DurabilityStep, () => Promise<void>> = {
    rename: () => durableRename(path.join(a, 'r'), path.join(b, 'r')),
    unlink: () => durableUnlink(path.join(b, 'r')),
    'write-atomic': () => writeFileAtomic(path.join(a, 'state.json'), '{"ok":true}\n'),
    copy: () => durableCopy(path.join(a, 'c'), path.join(other, 'c')),
    'move-same-fs': () => moveFile(path.join(a, 'm'), path.join(b, 'm')),
    // Another filesystem: a copy through .part, then the source removed.
    'move-other-fs': () => moveFile(path.join(b, 'm'), path.join(other, 'm')),
    'ensure-dir': () => ensureDir(path.join(a, 'd')),
  };
  for (const name of DURABILITY_STEPS) {
    marker(name);
    await steps[name]();
  }
  marker('end');
}

// Imported by the test only for the step names; runs when started as a script.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [base, other] = process.argv.slice(2);
  if (!base || !other) throw new Error('usage: durability-ops.ts <base dir> <other-filesystem dir>');
  await main(base, other);
}
