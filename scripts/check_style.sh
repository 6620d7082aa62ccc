#!/usr/bin/env bash
# Checks eqd's layout and static rules (issue #13):
#   - clang-format (.clang-format) on every tracked .cpp/.hpp (about 3 s: the whole tree is formatted);
#   - clang-tidy (.clang-tidy: house naming, bugprone-*, performance-*) on the sources under src/ that
#     changed since BASE (default HEAD~1: what the last commit touched), or on all with --all. Tidy
#     costs about 3 s of CPU per source, so without --all at most --max-tidy N sources (default 12)
#     are checked; a larger commit (a rename, a reformat) is named in the output and must be tidied
#     with --all by whoever makes it (a CI stage must not take 10 minutes for one commit).
# Usage: scripts/check_style.sh [--build-dir DIR] [--base REV | --all] [--max-tidy N] [--format-only]
#        scripts/check_style.sh --self-test   (proves that a misformatted file and a misnamed type fail)
# Exit 0 when clean, 1 on a finding (each printed as FILE:LINE: message), 2 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
base=HEAD~1
all=0
format_only=0
self_test=0
max_tidy=12
while (($#)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift ;;
    --base) base="$2"; shift ;;
    --all) all=1 ;;
    --max-tidy) max_tidy="$2"; shift ;;
    --format-only) format_only=1 ;;
    --self-test) self_test=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "check_style: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

command -v clang-format >/dev/null || { echo "check_style: clang-format is missing (apt-get install clang-format)" >&2; exit 2; }

if ((self_test)); then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf 'int  f( int a ){return a;}\n' >"$tmp/bad.cpp"
  if clang-format --style=file:.clang-format --dry-run -Werror "$tmp/bad.cpp" 2>/dev/null; then
    echo "check_style --self-test: a misformatted file passed clang-format" >&2; exit 1
  fi
  if command -v clang-tidy >/dev/null; then
    printf 'namespace eqd { struct bad_type { int x; }; }\nint use() { return eqd::bad_type{1}.x; }\n' >"$tmp/bad_name.cpp"
    if clang-tidy --config-file=.clang-tidy "$tmp/bad_name.cpp" -- -std=c++20 >/dev/null 2>&1; then
      echo "check_style --self-test: a misnamed type passed clang-tidy" >&2; exit 1
    fi
  fi
  echo "check_style --self-test: both checks fail where they should"
  exit 0
fi

status=0
have_base=1
git rev-parse --verify -q "$base" >/dev/null || have_base=0
mapfile -t cxx < <(git ls-files '*.cpp' '*.hpp')
bad=()
for f in "${cxx[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  status=1
  for f in "${bad[@]}"; do
    first=$( (clang-format --dry-run "$f" 2>&1 || true) | sed -n '1s/^\([^ ]*:[0-9]*:[0-9]*\):.*/\1/p')
    echo "${first:-$f}: not formatted as .clang-format says"
  done
  echo "check_style: ${#bad[@]} file(s) not formatted (clang-format -i FILE fixes each)" >&2
else
  echo "check_style: ${#cxx[@]} C++ file(s) formatted"
fi
((format_only)) && exit $status

command -v clang-tidy >/dev/null || { echo "check_style: clang-tidy is missing (apt-get install clang-tidy)" >&2; exit 2; }
[ -f "$build_dir/compile_commands.json" ] || { echo "check_style: $build_dir/compile_commands.json is missing (configure first)" >&2; exit 2; }
if ((all)); then
  mapfile -t srcs < <(git ls-files 'src/*.cpp')
elif ((have_base)); then
  mapfile -t srcs < <(git diff --name-only --diff-filter=AM "$base" -- 'src/*.cpp')
  if ((${#srcs[@]} > max_tidy)); then
    echo "check_style: ${#srcs[@]} sources changed since $base, more than --max-tidy $max_tidy: clang-tidy checks" \
      "the first $max_tidy; run scripts/check_style.sh --all for the rest (not checked here: ${srcs[*]:max_tidy})"
    srcs=("${srcs[@]:0:max_tidy}")
  fi
else
  echo "check_style: no revision $base here (a shallow clone?): clang-tidy has nothing to compare with"
  srcs=()
fi
if ((${#srcs[@]})); then
  if ! clang-tidy -p "$build_dir" --quiet "${srcs[@]}" >"${TMPDIR:-/tmp}/check_style.$$" 2>&1; then status=1; fi
  grep -E ': (warning|error): ' "${TMPDIR:-/tmp}/check_style.$$" || true
  rm -f "${TMPDIR:-/tmp}/check_style.$$"
  echo "check_style: clang-tidy on ${#srcs[@]} source(s) changed since ${base}$( ((all)) && echo ' (all)')"
else
  echo "check_style: no source under src/ changed since $base: clang-tidy has nothing to check"
fi
exit $status
