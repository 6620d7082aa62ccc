#!/usr/bin/env bash
# Installs the Debian packages eqd needs (only those missing; apt-get as root, or through sudo) and
# builds it. Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/setup.sh [--deps-only] [--with test|bench|all] [--build-dir DIR] [--build-type TYPE]
set -euo pipefail
cd "$(dirname "$0")/.."

with=""
deps_only=0
build_dir=build
build_type=RelWithDebInfo
while (($#)); do
  case "$1" in
    --deps-only) deps_only=1 ;;
    --with) with="$2"; shift ;;
    --build-dir) build_dir="$2"; shift ;;
    --build-type) build_type="$2"; shift ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Build dependencies: compiler, CMake and the libraries of DEVELOPERS' list.
pkgs=(build-essential cmake pkg-config libboost-dev libboost-system-dev libmodbus-dev libyaml-cpp-dev
      prometheus-cpp-dev catch2 libavahi-client-dev libsystemd-dev libcli11-dev libspdlog-dev
      nlohmann-json3-dev libsqlite3-dev)
# Backup archives: tar through libarchive, SHA-256 through OpenSSL's libcrypto (src/history/backup.cpp).
pkgs+=(libarchive-dev libssl-dev)
# The history in PostgreSQL (history.url): libpqxx; the server for its test (tests/unit/history_pg_test.cpp).
pkgs+=(libpqxx-dev)
# Test tools: socat (Modbus RTU over a pseudo-terminal pair), promtool/prometheus, avahi + dbus,
# util-linux (unshare, setpriv), iproute2 (network namespaces).
test_pkgs=(socat prometheus avahi-daemon avahi-utils dbus util-linux iproute2 procps python3 zsh bash-completion)
# Layout and static checks (scripts/check_style.sh, CTest style_check).
test_pkgs+=(clang-format clang-tidy)
# ninja-build: scripts/test.sh builds with Ninja, which keeps both cores busy across the libraries'
# targets (Make waits for each library before compiling what depends on it).
test_pkgs+=(ninja-build)
# sqlite3: the audit end-to-end test checks the history database after kill -9 (integrity_check).
test_pkgs+=(sqlite3)
# chromium: eqctl_report_e2e screenshots `eqctl report --format html` headless, without a network.
test_pkgs+=(chromium)
# PostgreSQL 15: history_pg_tests starts its own server (initdb, pg_ctl) as nobody.
test_pkgs+=(postgresql)
# The package test: lintian on the .deb, man + groff to check the man pages (tests/systemd/lintian_test.sh).
test_pkgs+=(lintian man-db groff-base)
# CAN tests against a real kernel in a throwaway VM (tests/vm/run_in_vm.sh).
test_pkgs+=(qemu-system-x86 busybox-static)
bench_pkgs=(gnuplot-nox glpk-utils libglpk-dev)
case "$with" in
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${bench_pkgs[@]}") ;;
  all) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  "") ;;
  *) echo "setup.sh: --with takes test, bench or all" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
((deps_only)) && exit 0

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target eqd eqsim eqctl 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
test -x "$build_dir/src/app/eqd" && test -x "$build_dir/eqsim" || { echo "setup: build failed" >&2; exit 1; }
echo "setup: built eqd, eqsim and eqctl in $build_dir/"
