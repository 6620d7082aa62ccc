# Shared by package_test.sh and vm_test.sh (sourced). Needs root and a private mount namespace.

# build_deb BUILD_DIR OUT_DIR -> prints the .deb's path. CPack only runs the install scripts: the
# binaries must be built already.
build_deb() {
  (cd "$2" && cpack -G DEB --config "$1/CPackConfig.cmake" -B "$2/out" >"$2/cpack.log" 2>&1) \
    || { cat "$2/cpack.log" >&2; echo "FAIL: cpack" >&2; return 1; }
  ls "$2"/out/eqd_*.deb
}

# dpkg_root ROOT SCRATCH DEB: a throwaway root with the host's /usr under an overlay (writes land in
# SCRATCH/upper, the host's /usr is untouched), a fresh /etc with the host's accounts minus any eqd,
# the host's package database; then `dpkg --root=ROOT -i DEB`, which runs the postinst chrooted.
dpkg_root() {
  local root=$1 scratch=$2 deb=$3 f d
  mkdir -p "$root/usr" "$scratch/upper" "$scratch/ovlwork"
  mount -t overlay overlay -o "lowerdir=/usr,upperdir=$scratch/upper,workdir=$scratch/ovlwork" "$root/usr"
  for d in bin sbin lib lib64; do [ -e "/$d" ] && ln -sfn "usr/$d" "$root/$d"; done
  mkdir -p "$root"/{etc,var/lib/dpkg/{info,updates,triggers},var/log,run,tmp,proc,dev}
  for f in passwd group shadow gshadow; do grep -v '^eqd:' "/etc/$f" >"$root/etc/$f" || true; done
  cp /etc/login.defs "$root/etc/" 2>/dev/null || true
  cp /var/lib/dpkg/status "$root/var/lib/dpkg/status"; : >"$root/var/lib/dpkg/available"
  mount -t proc proc "$root/proc"
  touch "$root/dev/null" && mount --bind /dev/null "$root/dev/null"
  dpkg --root="$root" -i "$deb" >"$scratch/dpkg.log" 2>&1 || { cat "$scratch/dpkg.log" >&2; echo "FAIL: dpkg -i" >&2; return 1; }
}
