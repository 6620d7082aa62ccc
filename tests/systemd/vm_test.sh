#!/usr/bin/env bash
# eqd.service and eqsim.service for real: builds the .deb, installs it with dpkg into a throwaway
# root (lib.sh: the host's /usr under a private overlay), and boots that root in a QEMU VM
# (software emulation, no network device) with systemd as PID 1. Inside (vm_inside.sh): eqsim.service
# with the demo rig, eqd configured by `eqsim --write-eqd-config`, Type=notify readiness, journal
# fields, kill -9 -> Restart=, control thread stalled -> watchdog kill + restart, reload with a bad
# config refused (old one kept), stop.
# The kernel comes from tests/vm/run_in_vm.sh's cache (it fetches Debian's generic kernel once).
#   vm_test.sh BUILD_DIR SOURCE_DIR WORK_DIR          (root; unshare --mount; qemu-system-x86)
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) work=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
cache=$build/vm-cache
timeout_s=${EQD_VM_TIMEOUT:-480}

if [ "${EQD_IN_NS:-}" != 1 ]; then
  rm -rf "$work" && mkdir -p "$work"
  command -v qemu-system-x86_64 >/dev/null || { echo "FAIL: qemu-system-x86_64 missing (qemu-system-x86)"; exit 1; }
  # Kernel: let the CAN harness fetch and prepare it (a no-op VM run), then take its vmlinux and the
  # virtio/9p modules and static busybox from its initramfs.
  "$src/tests/vm/run_in_vm.sh" --cache "$cache" --timeout 120 -- true >"$work/kernel.log" 2>&1 \
    || { cat "$work/kernel.log"; echo "FAIL: tests/vm/run_in_vm.sh could not prepare the kernel"; exit 1; }
  kdir=$(ls -d "$cache"/linux-image-* | sort | tail -1)
  mkdir -p "$work/initrd" && (cd "$work/initrd" && gzip -dc "$kdir/initrd.gz" | busybox cpio -id 2>/dev/null)
  cp "$kdir/vmlinux" "$work/vmlinux"
  deb=$(build_deb "$build" "$work")
  EQD_IN_NS=1 exec unshare --mount --propagation private "$0" "$@" "$deb"
fi
deb=$4
root=$work/root
dpkg_root "$root" "$work" "$deb"

# The VM's /etc: the host's, with the accounts dpkg's postinst produced, eqd's config directory, no
# fstab (nothing to mount) and the test units. It is copied into a tmpfs at boot.
etc=$work/vmetc
cp -a /etc "$etc"
cp "$root"/etc/{passwd,group,shadow,gshadow} "$etc/"
rm -rf "$etc/eqd" && cp -a "$root/etc/eqd" "$etc/eqd"
: >"$etc/fstab"
cat >"$etc/systemd/system/eqd-vmtest.target" <<'UNIT'
[Unit]
Description=eqd VM test
Requires=basic.target eqd-vmtest.service
After=basic.target eqd-vmtest.service
AllowIsolate=yes
UNIT
cat >"$etc/systemd/system/eqd-vmtest.service" <<'UNIT'
[Unit]
Description=eqd VM test steps
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/vmtest/vm_inside.sh >/vmtest/out.log 2>&1; echo $? >/vmtest/rc; sync'
ExecStopPost=/bin/systemctl poweroff --no-block
StandardOutput=journal+console
UNIT
share=$work/share
mkdir -p "$share"
cp "$here/vm_inside.sh" "$here/stall_thread.py" "$share/"

# Stage 1 (busybox): modules, a tmpfs root with /usr (9p, read-only), /etc copied, the test share,
# then systemd as PID 1.
cat >"$work/initrd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev && mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs dev /dev
for m in virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
  [ -f /mod/$m.ko ] && insmod /mod/$m.ko 2>/dev/null
done
# Second pass: a module whose dependency came later in the list (insmod does not resolve order).
for pass in 1 2 3; do for f in /mod/*.ko; do insmod $f 2>/dev/null; done; done
R=/newroot
mkdir -p $R && mount -t tmpfs -o mode=0755,size=300m root $R
mkdir -p $R/usr $R/etc $R/vmtest $R/proc $R/sys $R/dev $R/run $R/tmp $R/var/lib $R/var/log $R/var/tmp $R/hostetc
o=trans=virtio,version=9p2000.L
mount -t 9p -o $o,ro usr $R/usr && mount -t 9p -o $o,ro etc $R/hostetc && mount -t 9p -o $o,cache=none vmtest $R/vmtest \
  || { echo "vm: 9p mount failed"; poweroff -f; }
cp -a $R/hostetc/. $R/etc/ && umount $R/hostetc && rmdir $R/hostetc
for l in bin sbin lib lib64; do [ -e $R/usr/$l ] && ln -s usr/$l $R/$l; done
chmod 1777 $R/tmp $R/var/tmp
umount /proc /sys /dev
exec switch_root $R /lib/systemd/systemd
INIT
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")

append="console=ttyS0 no_timer_check panic=-1 rdinit=/init systemd.unit=eqd-vmtest.target systemd.show_status=0 loglevel=3"
start=$(date +%s.%N)
set +e
timeout --kill-after=5 "$timeout_s" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024 \
  -nodefaults -no-reboot -display none -serial stdio -nic none -kernel "$work/vmlinux" -initrd "$work/initrd.gz" \
  -virtfs "local,path=$root/usr,mount_tag=usr,security_model=none,readonly=on" \
  -virtfs "local,path=$etc,mount_tag=etc,security_model=none,readonly=on" \
  -virtfs "local,path=$share,mount_tag=vmtest,security_model=none" \
  -append "$append" </dev/null >"$work/console.log" 2>&1
qrc=$?
set -e
end=$(date +%s.%N)
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
cat "$share/out.log" 2>/dev/null || true
if [ ! -f "$share/rc" ]; then
  echo "--- VM console (last 60 lines)"; tail -60 "$work/console.log"
  echo "FAIL: the VM produced no result (qemu exit $qrc after $elapsed s)"; exit 1
fi
rc=$(cat "$share/rc")
echo "vm_test: exit $rc, boot to result $elapsed s"
exit "$rc"
