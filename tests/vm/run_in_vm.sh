#!/usr/bin/env bash
# Runs CMD... against a real Linux kernel's CAN stack and returns its exit code.
#
#   tests/vm/run_in_vm.sh [--cache DIR] [--timeout S] [--share DIR]... [--] CMD [ARG]...
#
# With EQD_CAN_IFACE set (e.g. a lab PC after `ip link add vcan0 type vcan && ip link set vcan0 up`),
# CMD runs directly on this machine against that interface: no VM.
#
# Otherwise it boots a throwaway QEMU VM (software emulation, ~4-10 s): Debian's generic kernel (the
# package linux-image-amd64 depends on, fetched with `apt-get download` and cached under --cache),
# a busybox-static initramfs as PID 1 that loads can-dev, can, can-raw, vcan and the virtio-9p
# modules, creates vcan0 (MTU 72: CAN FD) and vcan1 (MTU 16: classic only), mounts the host's /usr
# and /etc read-only and the shared directories (default: the repository this script lives in)
# read-write at the same paths over virtio-9p, chroots there and runs CMD with EQD_CAN_IFACE=vcan0,
# EQD_CAN_CLASSIC_IFACE=vcan1 and EQD_IN_VM=1. CMD's exit code comes back through a shared folder.
# The VM has no network device: nothing leaves it.
#
# Exit: CMD's code; 1 with a message if the VM cannot run (qemu, busybox-static or the kernel package
# missing, boot failure, timeout) -- unless EQD_SKIP_VM=1, then 77 (CTest SKIP_RETURN_CODE).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${EQD_VM_CACHE:-$repo/build/vm-cache}"
timeout_s=400
shares=()
while (($#)); do
  case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --timeout) timeout_s="$2"; shift 2 ;;
    --share) shares+=("$(cd "$2" && pwd)"); shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
(($#)) || { echo "run_in_vm.sh: no command (see --help)" >&2; exit 2; }
((${#shares[@]})) || shares=("$repo")

if [ -n "${EQD_CAN_IFACE:-}" ]; then
  exec "$@"
fi

unavailable() {
  echo "run_in_vm.sh: cannot run the CAN kernel test VM: $*" >&2
  if [ "${EQD_SKIP_VM:-0}" = 1 ]; then
    echo "run_in_vm.sh: EQD_SKIP_VM=1: skipping" >&2
    exit 77
  fi
  echo "run_in_vm.sh: install the test packages (scripts/setup.sh --with test: qemu-system-x86, busybox-static)," \
       "or set EQD_SKIP_VM=1 to skip, or EQD_CAN_IFACE=vcan0 to use a local vcan interface" >&2
  exit 1
}

qemu="$(command -v qemu-system-x86_64 || true)"
[ -n "$qemu" ] || unavailable "qemu-system-x86_64 not found (package qemu-system-x86)"
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q "statically linked" || unavailable "$busybox is not a static busybox (package busybox-static)"

mkdir -p "$cache" || unavailable "cannot create $cache"
# One kernel preparation at a time (CTest may run several VM tests in parallel).
exec 9>"$cache/.lock"
flock 9

kpkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
if [ -z "$kpkg" ]; then
  # Fall back to whatever was cached before (offline machine).
  kpkg="$(ls -1 "$cache" 2>/dev/null | grep '^linux-image-' | grep -v '\.deb$' | sed 's/\.h[0-9]*$//' | sort | tail -1)"
fi
[ -n "$kpkg" ] || unavailable "apt-cache does not know linux-image-amd64 (run apt-get update)"
# Bump when the initramfs recipe changes, so that a cached one is rebuilt.
harness_rev=2
kdir="$cache/$kpkg.h$harness_rev"
if [ ! -f "$kdir/vmlinux" ] || [ ! -s "$kdir/initrd.gz" ]; then
  echo "run_in_vm.sh: preparing kernel $kpkg in $kdir (first use)" >&2
  rm -rf "$kdir" && mkdir -p "$kdir/pkg"
  ( cd "$kdir" && apt-get download "$kpkg" >/dev/null 2>&1 ) ||
    { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && ( cd "$kdir" && apt-get download "$kpkg" >/dev/null 2>&1 ); } ||
    unavailable "apt-get download $kpkg failed (run apt-get update?)"
  dpkg -x "$kdir"/*.deb "$kdir/pkg" || unavailable "dpkg -x failed"
  rm -f "$kdir"/*.deb
  vmlinuz="$(ls "$kdir"/pkg/boot/vmlinuz-* | head -1)"
  # The uncompressed ELF boots in ~4 s instead of ~10 s: find the xz (or gzip/zstd) payload in the
  # bzImage and decompress it.
  /usr/bin/python3 - "$vmlinuz" "$kdir/vmlinux" <<'EOF' || cp "$vmlinuz" "$kdir/vmlinux"
import lzma, gzip, subprocess, sys, zlib
data = open(sys.argv[1], 'rb').read()
for magic, kind in ((b'\xfd7zXZ\x00', 'xz'), (b'\x28\xb5\x2f\xfd', 'zstd'), (b'\x1f\x8b\x08', 'gzip')):
    at = data.find(magic)
    while at >= 0:
        try:
            if kind == 'xz':
                out = lzma.LZMADecompressor().decompress(data[at:])
            elif kind == 'gzip':
                out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[at:])
            else:
                out = subprocess.run(['zstd', '-dc'], input=data[at:], capture_output=True).stdout
            if out[:4] == b'\x7fELF':
                open(sys.argv[2], 'wb').write(out)
                sys.exit(0)
        except Exception:
            pass
        at = data.find(magic, at + 1)
sys.exit(1)
EOF
  kver="${kpkg#linux-image-}"
  mods="$kdir/pkg/lib/modules/$kver/kernel"
  mkdir -p "$kdir/initrd/bin" "$kdir/initrd/mod"
  for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_pci_modern_dev.ko \
           drivers/virtio/virtio_pci_legacy_dev.ko drivers/virtio/virtio_pci.ko fs/netfs/netfs.ko \
           fs/fscache/fscache.ko net/9p/9pnet.ko net/9p/9pnet_virtio.ko fs/9p/9p.ko \
           drivers/net/can/dev/can-dev.ko net/can/can.ko net/can/can-raw.ko drivers/net/can/vcan.ko; do
    [ -f "$mods/$m" ] && cp "$mods/$m" "$kdir/initrd/mod/"
  done
  cp "$busybox" "$kdir/initrd/bin/busybox"
  cat > "$kdir/initrd/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc 2>/dev/null || { mkdir -p /proc && mount -t proc proc /proc; }
mkdir -p /sys /dev && mount -t sysfs sysfs /sys && mount -t devtmpfs dev /dev
# Modules in dependency order; a module built into this kernel is simply absent.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet \
         9pnet_virtio 9p can-dev can can-raw vcan; do
  [ -f /mod/$m.ko ] && { insmod /mod/$m.ko || echo "vm: insmod $m failed"; }
done
R=/newroot
mkdir -p $R/usr $R/etc $R/result $R/proc $R/sys $R/dev $R/tmp $R/run
mount -t 9p -o trans=virtio,version=9p2000.L,ro usr $R/usr && mount -t 9p -o trans=virtio,version=9p2000.L,ro etc $R/etc &&
  mount -t 9p -o trans=virtio,version=9p2000.L,cache=none result $R/result || { echo "vm: 9p mount failed"; poweroff -f; }
# tmpfs for /tmp and /run first: a shared tree may itself live under /tmp (e.g. a CI clone there),
# and mounting the tmpfs afterwards would hide it.
mount -t tmpfs tmp $R/tmp && mount -t tmpfs run $R/run
for s in $(cat /proc/cmdline); do
  case $s in eqd.share*=*) tag=${s%%=*}; tag=${tag#eqd.}; path=${s#*=}; mkdir -p $R$path; mount -t 9p -o trans=virtio,version=9p2000.L,cache=none $tag $R$path;; esac
done
for l in bin sbin lib lib32 lib64 libx32; do [ -e $R/usr/$l ] && ln -sf usr/$l $R/$l; done
mount -t proc proc $R/proc && mount -t sysfs sysfs $R/sys && mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/shm && mount -t tmpfs shm $R/dev/shm
ip link set lo up
ip link add dev vcan0 type vcan && ip link set vcan0 mtu 72 && ip link set vcan0 up
ip link add dev vcan1 type vcan && ip link set vcan1 mtu 16 && ip link set vcan1 up
chroot $R /bin/sh /result/cmd.sh
echo $? > $R/result/rc
sync
poweroff -f
EOF
  chmod +x "$kdir/initrd/init"
  mkdir -p "$kdir/initrd/proc"
  ( cd "$kdir/initrd" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1 > "$kdir/initrd.gz" )
  rm -rf "$kdir/pkg"
  [ -s "$kdir/initrd.gz" ] || unavailable "could not build the initramfs"
fi
flock -u 9

run="$(mktemp -d "$cache/run.XXXXXX")"
trap 'rm -rf "$run"' EXIT
{
  echo "cd $(printf '%q' "$PWD") 2>/dev/null || cd /"
  echo "export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/tmp EQD_IN_VM=1 EQD_CAN_IFACE=vcan0 EQD_CAN_CLASSIC_IFACE=vcan1"
  for v in EQD_SKIP_VM CATCH_SEED; do [ -n "${!v:-}" ] && echo "export $v=$(printf '%q' "${!v}")"; done
  printf 'exec'; printf ' %q' "$@"; echo
} > "$run/cmd.sh"

args=(-accel tcg,thread=multi -cpu max -smp 2 -m 1024 -nodefaults -no-reboot -display none -serial stdio -nic none
      -kernel "$kdir/vmlinux" -initrd "$kdir/initrd.gz"
      -virtfs "local,path=/usr,mount_tag=usr,security_model=none,readonly=on"
      -virtfs "local,path=/etc,mount_tag=etc,security_model=none,readonly=on"
      -virtfs "local,path=$run,mount_tag=result,security_model=none")
append="console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init"
i=0
for s in "${shares[@]}"; do
  args+=(-virtfs "local,path=$s,mount_tag=share$i,security_model=none")
  append+=" eqd.share$i=$s"
  i=$((i + 1))
done
start=$(date +%s.%N)
timeout --kill-after=5 "$timeout_s" "$qemu" "${args[@]}" -append "$append" </dev/null
qrc=$?
end=$(date +%s.%N)
if [ ! -f "$run/rc" ]; then
  [ $qrc = 124 ] && unavailable "the VM did not finish within ${timeout_s} s"
  unavailable "the VM stopped without a result (qemu exit $qrc)"
fi
rc="$(cat "$run/rc")"
printf 'run_in_vm.sh: exit %s after %.1f s in the VM (%s)\n' "$rc" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')" "$kpkg" >&2
exit "$rc"
