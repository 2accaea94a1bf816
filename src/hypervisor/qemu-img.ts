import { run, TransientCommandError } from './run';

const metadata = (what: string) => ({ kind: 'query' as const, label: `qemu-img ${what}` });

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
  return parse(
    JSON.parse(
      await run('qemu-img', ['info', '-U', '--output=json', '--', file], metadata('info')),
    ) as RawInfo,
  );
}

/** The whole backing chain, top first. */
export async function backingChain(file: string): Promise<ImageInfo[]> {
  return (
    JSON.parse(
      await run('qemu-img', ['info', '-U', '--backing-chain', '--output=json', '--', file], metadata('info')),
    ) as RawInfo[]
  ).map(parse);
}

/** A new, empty qcow2 overlay whose backing file is `backing` (absolute path, format given explicitly). */
export async function createOverlay(file: string, backing: string, virtualSize: number): Promise<void> {
  // -u: the backing file may be absent when we prepare overlays ahead of the downtime window.
  await run(
    'qemu-img',
    ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-u', '-b', backing, '--', file, String(virtualSize)],
    metadata('create'),
  );
}

/** The qcow2 `file` opened without its backing chain: for questions about the file alone. */
const withoutBacking = (file: string) =>
  `json:${JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: file } })}`;

/**
 * `qemu-img check` of an image; `alone` checks the qcow2 file's own metadata without
 * opening its backing chain (a backup image must be checkable wherever its base lives).
 */
export async function check(file: string, alone = false): Promise<{ ok: boolean; output: string }> {
  try {
    // It reads all of a large image's metadata: bounded like the long libvirt calls.
    const output = await run(
      'qemu-img',
      ['check', '-U', ...(alone ? [withoutBacking(file)] : ['--', file])],
      {
        kind: 'long',
        label: 'qemu-img check',
      },
    );
    return { ok: true, output };
  } catch (err) {
    // Out of time is not corrupt.
    if (err instanceof TransientCommandError) throw err;
    return { ok: false, output: (err as Error).message };
  }
}

/**
 * True when the top image of a qcow2 `file` holds clusters of its own (guest writes, zero
 * writes included). Opened without its backing chain, so it answers even when the
 * backing file is not (or no longer) there.
 */
export async function topHasData(file: string): Promise<boolean> {
  const map = JSON.parse(
    await run('qemu-img', ['map', '-U', '--output=json', withoutBacking(file)], metadata('map')),
  ) as Array<{
    present?: boolean;
    data: boolean;
  }>;
  return map.some((m) => m.present === true || m.data);
}

/**
 * A standalone qcow2 copy of `src` (its backing chain, if any, read into it) at `dst`,
 * which must not exist. `-U`: the source may be open read-only elsewhere (a verify).
 */
export async function convertStandalone(src: string, dst: string): Promise<void> {
  await run('qemu-img', ['convert', '-U', '-O', 'qcow2', '--', src, dst], {
    kind: 'unbounded',
    label: 'qemu-img convert',
  });
}

/** True when two images hold the same guest-visible content (whatever their format or layout). */
export async function sameContent(a: string, b: string): Promise<boolean> {
  try {
    await run('qemu-img', ['compare', '-U', '-q', '--', a, b], {
      kind: 'unbounded',
      label: 'qemu-img compare',
    });
    return true;
  } catch (err) {
    if (err instanceof TransientCommandError) throw err;
    // Exit 1 is "different"; anything else (2+) is an error reading them, which also means not proven equal.
    return false;
  }
}
