import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Permission bits (octal) of a directory and of each entry in it, by name (`.` for the directory). */
export async function modesIn(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = { '.': ((await fs.lstat(dir)).mode & 0o7777).toString(8) };
  for (const name of await fs.readdir(dir))
    out[name] = ((await fs.lstat(path.join(dir, name))).mode & 0o7777).toString(8);
  return out;
}

/**
 * What a finished backup's directory must look like: the directory not readable by others,
 * state, XML, LDIF and manifest root only, the images with the plan's permission (660 in the sandbox).
 */
export function privateBackupModes(vm: string, runDate: string, images: string[]): Record<string, string> {
  return {
    '.': '750',
    [`${vm}.state.${runDate}`]: '600',
    [`${vm}.xml.${runDate}`]: '600',
    [`${vm}.ldif.${runDate}`]: '600',
    [`${vm}.manifest.${runDate}`]: '600',
    ...Object.fromEntries(images.map((f) => [`${path.basename(f)}.${runDate}`, '660'])),
  };
}
