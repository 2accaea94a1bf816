import { run } from './run';

export interface ImageInfo {
  filename: string;
  format: string;
  virtualSize: number;
  actualSize: number;
  backingFilename?: string | undefined;
  fullBackingFilename?: string | undefined;
}

interface RawInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size': number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
}

function parse(raw: RawInfo): ImageInfo {
  return {
    filename: raw.filename,
    format: raw.format,
    virtualSize: raw['virtual-size'],
    actualSize: raw['actual-size'],
    backingFilename: raw['backing-filename'],
    fullBackingFilename: raw['full-backing-filename'],
  };
}

/** Image header only (`-U`: the image may be open in a running VM). */
export async function imageInfo(file: string): Promise<ImageInfo> {
  return parse(JSON.parse(await run('qemu-img', ['info', '-U', '--output=json', '--', file])) as RawInfo);
}

/** The whole backing chain, top first. */
export async function backingChain(file: string): Promise<ImageInfo[]> {
  return (
    JSON.parse(
      await run('qemu-img', ['info', '-U', '--backing-chain', '--output=json', '--', file]),
    ) as RawInfo[]
  ).map(parse);
}

/** A new, empty qcow2 overlay whose backing file is `backing` (absolute path, format given explicitly). */
export async function createOverlay(file: string, backing: string, virtualSize: number): Promise<void> {
  // -u: the backing file may be absent when we prepare overlays ahead of the downtime window.
  await run('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-F',
    'qcow2',
    '-u',
    '-b',
    backing,
    '--',
    file,
    String(virtualSize),
  ]);
}

export async function check(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    return { ok: true, output: await run('qemu-img', ['check', '-U', '--', file]) };
  } catch (err) {
    return { ok: false, output: (err as Error).message };
  }
}

/** True when the top image of `file` holds no data of its own (everything comes from its backing chain). */
export async function mapHasNoData(file: string): Promise<boolean> {
  const map = JSON.parse(await run('qemu-img', ['map', '-U', '--output=json', '--', file])) as Array<{
    depth: number;
    data: boolean;
  }>;
  return !map.some((m) => m.depth === 0 && m.data);
}
