import { createHash, randomFill } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { run } from '../hypervisor/run';
import type { Virsh } from '../hypervisor/virsh';

/**
 * Guest RAM that holds real data, for tests and measurements at production size: an idle
 * BIOS guest's RAM is almost all zero pages, so its saved state is tiny and every save
 * looks fast. QEMU's generic loader copies a random blob into guest RAM at boot;
 * `pmemsave` reads it back.
 */

const MiB = 1024 * 1024;
/** Where the blob starts in guest-physical memory: above the BIOS areas. */
export const RAM_BLOB_ADDR = 16 * MiB;
/** One loader takes at most 2 GiB; smaller pieces keep QEMU's read buffers small too. */
export const RAM_BLOB_PIECE = 512 * MiB;
/**
 * QEMU runs as libvirt-qemu and must read the pieces, so they live outside the repository
 * (which may sit in a 0700 home). Random test data, not guest secrets: world-readable.
 */
export const RAM_BLOB_ROOT = '/var/tmp/vmbackup-blobs';
const QEMU_USER = 'libvirt-qemu';
const CHUNK = 16 * MiB;

export interface RamBlobPiece {
  file: string;
  bytes: number;
  /** Guest-physical address the loader puts this piece at. */
  addr: number;
}

export interface RamBlob {
  name: string;
  bytes: number;
  /** sha256 (hex) of the whole blob, the pieces in order. */
  sha256: string;
  pieces: RamBlobPiece[];
}

interface Manifest {
  bytes: number;
  sha256: string;
  pieces: Array<{ file: string; bytes: number }>;
}

const MANIFEST = 'blob.json';

// Part of a path inside QEMU's `-device loader,file=…`, where a comma would end the value.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkName(name: string): void {
  if (!NAME.test(name)) throw new Error(`bad blob or VM name ${name}`);
}

async function publicDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.chmod(dir, 0o755); // mkdir's mode is masked by the umask
}

function piecesOf(dir: string, manifest: Manifest): RamBlobPiece[] {
  let addr = RAM_BLOB_ADDR;
  return manifest.pieces.map((p) => {
    const piece = { file: path.join(dir, p.file), bytes: p.bytes, addr };
    addr += p.bytes;
    return piece;
  });
}

async function readManifest(dir: string, bytes: number): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await fs.readFile(path.join(dir, MANIFEST), 'utf8')) as Manifest;
    if (m.bytes !== bytes) return undefined;
    for (const p of m.pieces) if ((await fs.stat(path.join(dir, p.file))).size !== p.bytes) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

/**
 * A random blob of `bytes` bytes in pieces of at most 512 MiB under `root/<name>`, made
 * once and reused: the manifest is written last, so a blob interrupted while being
 * written is made again.
 */
export async function ensureRamBlob(name: string, bytes: number, root = RAM_BLOB_ROOT): Promise<RamBlob> {
  checkName(name);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`bad blob size ${bytes}`);
  const dir = path.join(root, name);
  const existing = await readManifest(dir, bytes);
  if (existing) return { name, bytes, sha256: existing.sha256, pieces: piecesOf(dir, existing) };

  await fs.rm(dir, { recursive: true, force: true });
  await publicDir(root);
  await publicDir(dir);
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(CHUNK);
  const fill = promisify(randomFill);
  const manifest: Manifest = { bytes, sha256: '', pieces: [] };
  for (let i = 0, left = bytes; left > 0; i++) {
    const pieceBytes = Math.min(RAM_BLOB_PIECE, left);
    const file = `piece-${i}.bin`;
    const handle = await fs.open(path.join(dir, file), 'w', 0o644);
    try {
      // Hashed while written: no second pass over GiB of data.
      for (let done = 0; done < pieceBytes;) {
        const chunk = buffer.subarray(0, Math.min(CHUNK, pieceBytes - done));
        await fill(chunk);
        hash.update(chunk);
        await handle.write(chunk);
        done += chunk.length;
      }
    } finally {
      await handle.close();
    }
    manifest.pieces.push({ file, bytes: pieceBytes });
    left -= pieceBytes;
  }
  manifest.sha256 = hash.digest('hex');
  await fs.writeFile(path.join(dir, MANIFEST), JSON.stringify(manifest), { mode: 0o644 });
  return { name, bytes, sha256: manifest.sha256, pieces: piecesOf(dir, manifest) };
}

export async function removeRamBlob(name: string, root = RAM_BLOB_ROOT): Promise<void> {
  checkName(name);
  await fs.rm(path.join(root, name), { recursive: true, force: true });
}

function loaderDir(vm: string, root: string): string {
  checkName(vm);
  return path.join(root, `vm-${vm}`);
}

/**
 * The files a VM's loaders name: one symlink per piece in a directory of the VM's own, so
 * that a test can later point them elsewhere (`blankRamLoaders`) without touching the blob.
 */
export async function linkRamLoaders(
  vm: string,
  blob: RamBlob,
  root = RAM_BLOB_ROOT,
): Promise<RamBlobPiece[]> {
  const dir = loaderDir(vm, root);
  await fs.rm(dir, { recursive: true, force: true });
  await publicDir(dir);
  const links: RamBlobPiece[] = [];
  for (const [i, p] of blob.pieces.entries()) {
    const file = path.join(dir, `piece-${i}.bin`);
    await fs.symlink(p.file, file);
    links.push({ ...p, file });
  }
  return links;
}

/**
 * Points a VM's loaders at sparse files of zeros of the same sizes. QEMU's loader fills
 * RAM on every boot, also before an incoming restore overwrites it, so only with blank
 * loaders does the blob in guest RAM prove that RAM came from the saved state.
 */
export async function blankRamLoaders(vm: string, blob: RamBlob, root = RAM_BLOB_ROOT): Promise<void> {
  const dir = loaderDir(vm, root);
  const zeros = path.join(root, 'zeros');
  await publicDir(zeros);
  for (const [i, p] of blob.pieces.entries()) {
    const zero = path.join(zeros, `${p.bytes}.bin`);
    const handle = await fs.open(zero, 'a', 0o644);
    try {
      await handle.truncate(p.bytes); // sparse: costs no disk space
    } finally {
      await handle.close();
    }
    const file = path.join(dir, `piece-${i}.bin`);
    await fs.rm(file, { force: true });
    await fs.symlink(zero, file);
  }
}

/** Removes a VM's loader links, if it has any (any VM name is accepted: it may never have had a blob). */
export async function removeRamLoaders(vm: string, root = RAM_BLOB_ROOT): Promise<void> {
  if (!NAME.test(vm)) return;
  await fs.rm(loaderDir(vm, root), { recursive: true, force: true });
}

/** `<qemu:arg>` elements that load each piece at its address (the domain needs the qemu namespace). */
export function loaderArgs(pieces: RamBlobPiece[]): string[] {
  return pieces.flatMap((p) => {
    if (/[,'"<>&]/.test(p.file)) throw new Error(`loader file ${p.file} cannot go into a -device option`);
    return [
      "<qemu:arg value='-device'/>",
      `<qemu:arg value='loader,file=${p.file},addr=${p.addr},force-raw=on'/>`,
    ];
  });
}

/** The blob must lie in guest RAM above its start, and below 3 GiB where the 'pc' machine's low RAM may end. */
export function checkBlobFits(blob: RamBlob, memoryBytes: number): void {
  const end = RAM_BLOB_ADDR + blob.bytes;
  if (end > Math.min(memoryBytes, 3 * 1024 * MiB))
    throw new Error(
      `a RAM blob of ${blob.bytes} bytes at ${RAM_BLOB_ADDR} does not fit in ${memoryBytes} bytes of guest RAM`,
    );
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * sha256 of `length` bytes of guest-physical memory from `addr`, through `pmemsave`. QEMU
 * writes the file as libvirt-qemu into a directory only that user may enter: guest memory
 * is secret. The file is gone afterwards.
 */
export async function guestRamSha256(
  virsh: Virsh,
  vm: string,
  addr: number,
  length: number,
  tmpRoot = '/var/tmp',
): Promise<string> {
  const [uid, gid] = await Promise.all([run('id', ['-u', QEMU_USER]), run('id', ['-g', QEMU_USER])]);
  const dir = await fs.mkdtemp(path.join(tmpRoot, 'vmbackup-pmem-'));
  try {
    await fs.chown(dir, Number(uid), Number(gid));
    await fs.chmod(dir, 0o700);
    const file = path.join(dir, 'ram.bin');
    const out = await virsh.hmp(vm, `pmemsave ${addr} ${length} "${file}"`);
    // HMP reports errors as text while virsh succeeds.
    const size = await fs.stat(file).then(
      (s) => s.size,
      () => -1,
    );
    if (size !== length) throw new Error(`pmemsave on ${vm} wrote ${size} of ${length} bytes: ${out.trim()}`);
    return await sha256File(file);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** sha256 of the guest RAM range the blob was loaded into. */
export function blobRangeSha256(virsh: Virsh, vm: string, blob: RamBlob): Promise<string> {
  return guestRamSha256(virsh, vm, RAM_BLOB_ADDR, blob.bytes);
}
