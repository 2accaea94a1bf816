import { promises as fs } from 'node:fs';
import { parseSaveData, parseSaveHeader, rewriteSaveData, SAVE_HEADER_BYTES } from '../../domain/save-image';
import { readHead } from './read-head';

/**
 * Rewrites, in place, the domain XML in the header of a copied save image: `change` gets
 * the saved XML and returns the new one (the header keeps its length, the memory stream
 * stays where it is). Only ever called on a copy, never on a backup.
 */
export async function rewriteSavedXml(file: string, change: (xml: string) => string): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    const head = Buffer.alloc(SAVE_HEADER_BYTES);
    await handle.read(head, 0, SAVE_HEADER_BYTES, 0);
    const all = Buffer.alloc(SAVE_HEADER_BYTES + parseSaveHeader(head).dataLen);
    await handle.read(all, 0, all.length, 0);
    const image = parseSaveData(all);
    const out = rewriteSaveData(image, change(image.xml));
    await handle.write(out, 0, out.length, 0);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The domain XML in a save image's header, read without the memory stream behind it. */
export async function savedXml(file: string): Promise<string> {
  const { dataLen } = parseSaveHeader(await readHead(file, SAVE_HEADER_BYTES));
  return parseSaveData(await readHead(file, SAVE_HEADER_BYTES + dataLen)).xml;
}
