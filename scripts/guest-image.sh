#!/usr/bin/env bash
# Builds the kernel and initramfs of the tests' Linux guest (src/dev/linux-guest.ts),
# idempotently: Debian's cloud kernel plus a busybox initramfs whose /init loads the
# virtio disk modules and then ticks once a second, advancing a counter in RAM and on
# the raw virtio disk together (see the /init below). No network, no downloads besides
# the Debian packages linux-image-cloud-amd64, busybox-static and cpio (installed when
# missing, as root).
#
# Output, in VMBACKUP_GUEST_DIR (default /var/tmp/vmbackup-guest): vmlinuz, initrd.img
# and stamp. It lives outside the repository because QEMU runs as libvirt-qemu, which
# cannot read a clone in a 0700 home directory.
# Usage: bash scripts/guest-image.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

GUEST_DIR="${VMBACKUP_GUEST_DIR:-/var/tmp/vmbackup-guest}"
GUEST_APT_PACKAGES=(linux-image-cloud-amd64 busybox-static cpio)
# What the guest needs as modules; in Debian's cloud kernel virtio, virtio_ring, virtio_pci
# and virtio_blk are all modules (=m), only the 8250 serial console is built in.
GUEST_MODULES=(virtio_pci virtio_blk)
# modprobe and depmod live in /sbin, which a non-login root shell may lack.
PATH="$PATH:/usr/sbin:/sbin"

is_debian || die "the test guest is built from Debian packages (${GUEST_APT_PACKAGES[*]}); $(os_name) is not Debian"
apt_install "${GUEST_APT_PACKAGES[@]}"

# The kernel the metapackage currently points at, e.g. 6.1.0-57-cloud-amd64 (older ones may linger in /boot).
kernel_version() {
  local depends
  depends="$(dpkg-query -W -f='${Depends}' linux-image-cloud-amd64)"
  [[ "$depends" =~ linux-image-([^[:space:],]+-cloud-amd64) ]] ||
    die "cannot tell the kernel of linux-image-cloud-amd64 from its Depends: $depends"
  printf '%s' "${BASH_REMATCH[1]}"
}

KVER="$(kernel_version)"
KERNEL="/boot/vmlinuz-$KVER"
[[ -r "$KERNEL" ]] || die "$KERNEL is missing although linux-image-$KVER is installed"
BUSYBOX=/bin/busybox
[[ -x "$BUSYBOX" ]] || die "$BUSYBOX is missing although busybox-static is installed"
file_sha() { sha256sum -- "$1" | cut -d' ' -f1; }

# Everything the image is made of: a change in any of them rebuilds it.
STAMP="kernel $KVER $(file_sha "$KERNEL")
busybox $(file_sha "$BUSYBOX")
script $(file_sha "${BASH_SOURCE[0]}")"

if [[ -r "$GUEST_DIR/stamp" && "$(cat -- "$GUEST_DIR/stamp")" == "$STAMP" &&
  -r "$GUEST_DIR/vmlinuz" && -r "$GUEST_DIR/initrd.img" ]]; then
  exit 0
fi
require_root "building the test guest in $GUEST_DIR"
log "building the test guest (kernel $KVER) in $GUEST_DIR"

# Readable for libvirt-qemu; built aside and renamed into place, so a reader never sees half a file.
install -d -m 0755 -- "$GUEST_DIR"
WORK="$(mktemp -d -- "$GUEST_DIR/.build.XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT
ROOT="$WORK/root"
mkdir -p -- "$ROOT"/{bin,dev,proc,sys,run,lib/modules}

cp -- "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [[ "$applet" == busybox ]] || ln -s busybox "$ROOT/bin/$applet"
done

# The modules and their dependencies in load order, as modprobe would insert them
# ("insmod /lib/modules/…/x.ko" lines; built-in ones print "builtin x" and need nothing).
# -a: without it modprobe takes every name after the first as a module parameter.
declare -A seen=()
: >"$ROOT/lib/modules/load-order"
while read -r verb module_path _; do
  [[ "$verb" == insmod ]] || continue
  name="$(basename -- "$module_path")"
  [[ -z "${seen[$name]:-}" ]] || continue
  seen[$name]=1
  cp -- "$module_path" "$ROOT/lib/modules/$name"
  printf '%s\n' "$name" >>"$ROOT/lib/modules/load-order"
done < <(modprobe -a -S "$KVER" --show-depends "${GUEST_MODULES[@]}")
[[ -s "$ROOT/lib/modules/load-order" ]] || die "modprobe found no modules for ${GUEST_MODULES[*]} in kernel $KVER"
log "guest modules: $(tr '\n' ' ' <"$ROOT/lib/modules/load-order")"

# The guest's PID 1. The counter n lives in RAM (a shell variable, and 4 MiB of tmpfs
# rewritten each tick so that RAM really changes) and in the first sector of /dev/vda.
# Each tick: n+1, dirty the RAM, write n to the disk and flush it, then print "tick n".
# So a restore of RAM and disk from one instant prints the disk's value + 1 first (or the
# disk's value itself if the save fell between the write and the print, a few ms). The
# guest also checks, before writing, that the disk still holds its RAM value, and says
# "mismatch" when not (a disk from another instant than the RAM).
cat >"$ROOT/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=16m tmpfs /run
exec </dev/console >/dev/console 2>&1
echo "guest: init after $(cut -d' ' -f1 /proc/uptime) s"
while read -r m; do
  insmod "/lib/modules/$m" || echo "guest: insmod $m failed"
done </lib/modules/load-order
i=0
while [ ! -b /dev/vda ] && [ "$i" -lt 100 ]; do
  i=$((i + 1))
  sleep 0.1
done
[ -b /dev/vda ] || echo "guest: no /dev/vda"

# The counter in sector 0 ("tick 00000042", zero-padded to 512 bytes), 0 on an empty disk.
# O_DIRECT: the disk itself, never the page cache. Leading zeros would make ash read octal.
disk_counter() {
  set -- $(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | tr -d '\000')
  if [ "$1" = tick ]; then
    v=$(echo "$2" | sed 's/^0*//')
    echo "${v:-0}"
  else
    echo 0
  fi
}

# Non-zero data (QEMU saves zero pages as mere flags), made once: generating it takes
# about a second under TCG, copying it a few ms.
yes 'vmbackup test guest RAM' | head -c 4194304 >/run/base
n=$(disk_counter)
echo "guest: ready after $(cut -d' ' -f1 /proc/uptime) s, disk holds $n"
while :; do
  d=$(disk_counter)
  [ "$d" = "$n" ] || echo "guest: mismatch: RAM holds $n, disk holds $d"
  n=$((n + 1))
  { echo "tick $n"; cat /run/base; } >/run/dirty
  printf 'tick %08d\n' "$n" | dd of=/dev/vda bs=512 count=1 conv=sync,notrunc,fsync 2>/dev/null ||
    echo "guest: disk write failed"
  echo "tick $n"
  sleep 1
done
EOF
chmod 0755 "$ROOT/init"

(cd -- "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null --quiet -o -H newc) | gzip -9 >"$WORK/initrd.img"
cp -- "$KERNEL" "$WORK/vmlinuz"
chmod 0644 -- "$WORK/initrd.img" "$WORK/vmlinuz"
mv -f -- "$WORK/vmlinuz" "$GUEST_DIR/vmlinuz"
mv -f -- "$WORK/initrd.img" "$GUEST_DIR/initrd.img"
printf '%s' "$STAMP" >"$WORK/stamp"
chmod 0644 -- "$WORK/stamp"
mv -f -- "$WORK/stamp" "$GUEST_DIR/stamp"
log "test guest ready: $GUEST_DIR/vmlinuz, $GUEST_DIR/initrd.img"
