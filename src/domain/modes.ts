/**
 * Modes of what the node writes. A backup holds the guest's disks and RAM: nothing of it
 * is ever readable by other users, whatever a plan says.
 */

/** State, XML, LDIF, journals, markers: root only. */
export const PRIVATE_FILE = 0o600;

/** Directory on the RAM disk that `virsh save` writes into. */
export const PRIVATE_DIR = 0o700;

const WORLD = 0o007;

/** A backed-up disk image: the plan's permission (sstVirtualizationDiskImagePermission) minus others' bits. */
export function backupImageMode(planned: number): number {
  return planned & 0o777 & ~WORLD;
}

/**
 * A run directory (and the pool/VM directories above it the node makes): the plan's
 * directory permission, else 0750, never readable or writable by others. A retain
 * directory keeps others' search bit: in save mode QEMU (user libvirt-qemu) opens the
 * retained image there as the backing file of the live overlay, by name only.
 */
export function runDirMode(planned: number | undefined, kind: 'retain' | 'backup'): number {
  const base = (planned ?? 0o750) & 0o777 & ~WORLD;
  return kind === 'retain' ? base | 0o001 : base;
}
