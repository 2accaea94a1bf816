import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { DomainView } from '../../domain/steps/snapshot';
import { isInside } from '../../domain/paths';
import { imageInfo, type ImageInfo } from '../../hypervisor/qemu-img';
import type { Virsh } from '../../hypervisor/virsh';

/** The domain's state, the reason libvirt gives, and a libvirt job still running on it. */
export async function observeDomain(virsh: Virsh, vm: string): Promise<DomainView> {
  const s = await virsh.stateWithReason(vm);
  if (!s) return { state: 'absent', reason: '' };
  const active = s.state === 'running' || s.state === 'paused';
  const job = active ? await virsh.activeJob(vm) : undefined;
  // Once QEMU has sent the last byte, libvirt reports a save's job `Completed` (then none)
  // while it still flushes the file, finishes its header and stops QEMU: seconds for GiB
  // of RAM. Until then the domain stays `paused (saving)`, and the save is still running.
  if (!job && s.state === 'paused' && s.reason === 'saving') return { ...s, job: 'Save' };
  return { state: s.state, reason: s.reason, job };
}

/** `dev:inode` of a path, or undefined when nothing is there. */
export async function inodeOf(p: string): Promise<string | undefined> {
  try {
    const s = await fs.stat(p);
    return `${s.dev}:${s.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The files (as `dev:inode`) the VM's QEMU process holds open. Paths can lie: after a
 * rename, a VM started a moment earlier still writes to the moved file. Inodes cannot.
 */
export async function qemuOpenFiles(vm: string, runDir: string): Promise<Set<string>> {
  const pid = Number((await fs.readFile(path.join(runDir, `${vm}.pid`), 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no QEMU process id for ${vm} in ${runDir}`);
  const fdDir = `/proc/${pid}/fd`;
  const out = new Set<string>();
  for (const fd of await fs.readdir(fdDir)) {
    const inode = await inodeOf(path.join(fdDir, fd)).catch(() => undefined);
    if (inode) out.add(inode);
  }
  return out;
}

const headers = new Map<string, { key: string; info: ImageInfo }>();

/**
 * An image's header, read again only when the file changed (inode, size or mtime): the
 * downtime window observes the world between renames and must stay short.
 */
export async function imageHeader(file: string): Promise<ImageInfo | undefined> {
  let s;
  try {
    s = await fs.stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const key = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  const cached = headers.get(file);
  if (cached?.key === key) return cached.info;
  const info = await imageInfo(file);
  headers.set(file, { key, info });
  if (headers.size > 1000) headers.delete(headers.keys().next().value!);
  return info;
}

/** Is `file` a qcow2 overlay whose backing file is `backing`? */
export async function isOverlayOf(file: string, backing: string): Promise<boolean> {
  const info = await imageHeader(file);
  return !!info && (info.fullBackingFilename === backing || info.backingFilename === backing);
}

/** Does `file`'s backing file lie in `dir`? */
export async function backedFrom(file: string, dir: string): Promise<boolean> {
  const backing = (await imageHeader(file))?.fullBackingFilename;
  return !!backing && isInside(dir, backing);
}
