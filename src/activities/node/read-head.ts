import { promises as fs } from 'node:fs';

/**
 * The first `bytes` bytes of a file (fewer if it is shorter). State files and images can
 * be many GiB: `fs.readFile` refuses files over 2 GiB and would hold all of it in memory.
 */
export async function readHead(file: string, bytes: number): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
