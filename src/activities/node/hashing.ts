import { createHash } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { awaitReadBudget } from './read-budget';

/** Size and SHA-256 of a file as read, and how many bytes were read for it. */
export interface FileDigest {
  size: number;
  sha256: string;
}

/** Read size: large enough for sequential throughput, small enough for steady progress. */
const CHUNK = 4 * 1024 * 1024;
/** Zero runs of this size are left as holes in a copy (the file system's usual block). */
const HOLE = 64 * 1024;
const ZEROS = Buffer.alloc(HOLE);

/**
 * Reads a file once from start to end, handing each chunk to `use` while the next one is
 * read: hashing or writing overlaps the read, so one pass runs at the disk's speed.
 */
async function readOnce(
  input: FileHandle,
  use: (chunk: Buffer, position: number) => Promise<void> | void,
): Promise<number> {
  const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  // Each read waits for its share of the node's read budget (unlimited unless configured).
  const read = async (buffer: Buffer, at: number) => {
    await awaitReadBudget(CHUNK);
    return input.read(buffer, 0, CHUNK, at);
  };
  let position = 0;
  let which = 0;
  let pending = read(buffers[which]!, position);
  for (;;) {
    const { bytesRead } = await pending;
    if (bytesRead === 0) return position;
    const chunk = buffers[which]!.subarray(0, bytesRead);
    const at = position;
    position += bytesRead;
    which = 1 - which;
    pending = read(buffers[which]!, position);
    // If `use` throws, this read's outcome no longer matters.
    pending.catch(() => undefined);
    await use(chunk, at);
  }
}

const openForReading = (file: string) => fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);

/** SHA-256 of a file, read once; `onBytes` is told the bytes read so far. */
export async function hashFile(file: string, onBytes?: (bytes: number) => void): Promise<FileDigest> {
  const input = await openForReading(file);
  try {
    const hash = createHash('sha256');
    const size = await readOnce(input, (chunk, at) => {
      hash.update(chunk);
      onBytes?.(at + chunk.length);
    });
    return { size, sha256: hash.digest('hex') };
  } finally {
    await input.close();
  }
}

/** Writes the chunk's data, leaving runs of zeros as holes: the copy stays as sparse as its source. */
async function writeSparse(output: FileHandle, chunk: Buffer, at: number): Promise<void> {
  let start = -1;
  for (let off = 0; off < chunk.length; off += HOLE) {
    const block = chunk.subarray(off, Math.min(off + HOLE, chunk.length));
    const zero = block.equals(ZEROS.subarray(0, block.length));
    if (!zero && start < 0) start = off;
    if (zero && start >= 0) {
      await output.write(chunk, start, off - start, at + start);
      start = -1;
    }
  }
  if (start >= 0) await output.write(chunk, start, chunk.length - start, at + start);
}

/**
 * Copies `src` into the existing, empty file `dst` and hashes it in the same pass: the
 * data is read once, for the copy and the digest alike. Holes stay holes; the copy keeps
 * the source's mode, owner and times. The caller syncs and renames.
 */
export async function hashingCopy(
  src: string,
  dst: string,
  onBytes?: (bytes: number) => void,
): Promise<FileDigest> {
  const input = await openForReading(src);
  try {
    const output = await fs.open(dst, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      const hash = createHash('sha256');
      const size = await readOnce(input, async (chunk, at) => {
        hash.update(chunk);
        await writeSparse(output, chunk, at);
        onBytes?.(at + chunk.length);
      });
      await output.truncate(size);
      // As `cp --preserve=mode,ownership,timestamps`: callers that want others set them after.
      const s = await input.stat();
      await output.chown(s.uid, s.gid);
      await output.chmod(s.mode & 0o7777);
      await output.utimes(s.atime, s.mtime);
      return { size, sha256: hash.digest('hex') };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
