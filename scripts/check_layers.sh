#!/usr/bin/env bash
# check_layers.sh: fails on an #include that runs back up eqd's layers (docs/architecture.md, "Layers").
#
#   core <- io <- config <- discovery <- daemon <- history <- (control, metrics) <- app;  cli beside app
#   util (crash-safe files) beside core: every layer but core may include it; it includes no eqd header.
#
# A file of layer L is one under include/eqd/L/ or src/L/. It may include "eqd/M/..." only when M is L
# itself or a layer below L. control and metrics are siblings (neither includes the other); cli (eqctl)
# is a program beside app and includes no app header. config and discovery are a pair in which only
# discovery looks at config (it turns what it finds into configuration entries). A relative include that
# leaves its folder ("../") is refused too: it would pass by this check. A file in a folder that is not a
# layer and includes an eqd header is refused until the folder is added to the table below.
#
# Usage: check_layers.sh [ROOT]        check ROOT (default: the checkout this script is in)
#        check_layers.sh --self-test   prove on temporary trees that the check passes and fails
# Exit status: 0 no violation, 1 violations (listed as FILE:LINE: ...), 2 usage error.
set -u

# What each layer may include besides itself. Keep in step with docs/architecture.md and src/CMakeLists.txt.
declare -A allowed=(
  [core]=""
  [util]=""
  [io]="core util"
  [config]="core io util"
  [discovery]="core io config util"
  [daemon]="core io config discovery util"
  [history]="core io config discovery daemon util"
  [control]="core io config discovery daemon history util"
  [metrics]="core io config discovery daemon history util"
  [app]="core io config discovery daemon history control metrics util"
  [cli]="core io config discovery daemon history control metrics util"
)

# check ROOT: prints every violation; returns 1 if there was one.
check() {
  local root=$1 bad=0 file rel layer line num text target
  if [ ! -d "$root/include/eqd" ] && [ ! -d "$root/src" ]; then
    echo "check_layers: $root has neither include/eqd nor src" >&2
    return 2
  fi
  while IFS= read -r -d '' file; do
    rel=${file#"$root"/}
    case $rel in
      include/eqd/*/*) layer=${rel#include/eqd/}; layer=${layer%%/*} ;;
      src/*/*) layer=${rel#src/}; layer=${layer%%/*} ;;
      *) layer="" ;;
    esac
    # Every include of an eqd header, and every relative include that climbs out of the folder.
    while IFS= read -r line; do
      num=${line%%:*}
      text=${line#*:}
      if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"\.\./ ]]; then
        echo "$rel:$num: relative include leaving its folder (include \"eqd/<layer>/...\" instead): ${text#"${text%%[![:space:]]*}"}"
        bad=1
        continue
      fi
      [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*[\<\"]eqd/([A-Za-z0-9_]+)/ ]] || continue
      target=${BASH_REMATCH[1]}
      if [ -z "$layer" ] || [ -z "${allowed[$layer]+set}" ]; then
        echo "$rel:$num: ${layer:-<top level>} is not a known layer (add it to scripts/check_layers.sh and docs/architecture.md)"
        bad=1
        continue
      fi
      if [ -z "${allowed[$target]+set}" ]; then
        echo "$rel:$num: includes eqd/$target/, which is not a known layer"
        bad=1
        continue
      fi
      [ "$target" = "$layer" ] && continue
      if [[ " ${allowed[$layer]} " != *" $target "* ]]; then
        echo "$rel:$num: $layer includes eqd/$target/, which runs back up the layers ($layer may include: ${allowed[$layer]:-nothing but itself})"
        bad=1
      fi
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*([<"]eqd/|"\.\./)' "$file")
  done < <(find "$root/include" "$root/src" -type f \( -name '*.hpp' -o -name '*.h' -o -name '*.cpp' -o -name '*.cc' -o -name '*.ipp' \) -print0 2>/dev/null | sort -z)
  return $bad
}

# expect NAME WANT_STATUS WANT_TEXT ROOT: one self-test case.
self_fail=0
expect() {
  local name=$1 want=$2 text=$3 root=$4 out got
  out=$(check "$root" 2>&1)
  got=$?
  if [ "$got" -ne "$want" ] || { [ -n "$text" ] && [[ $out != *"$text"* ]]; }; then
    echo "self-test $name: FAILED: exit $got (want $want), output:"
    echo "$out" | sed 's/^/  /'
    [ -n "$text" ] && echo "  (wanted text: $text)"
    self_fail=1
  else
    echo "self-test $name: ok"
  fi
}

self_test() {
  local t
  t=$(mktemp -d /tmp/eqd-check-layers-XXXXXX) || return 2
  trap 'rm -rf "$t"' RETURN
  mkdir -p "$t/include/eqd/core" "$t/include/eqd/daemon" "$t/include/eqd/control" "$t/src/core" "$t/src/io" \
           "$t/src/discovery" "$t/src/app" "$t/src/cli" "$t/src/history" "$t/src/daemon"
  printf '#pragma once\n#include <cstdint>\n#include "eqd/core/b.hpp"\n' > "$t/include/eqd/core/a.hpp"
  printf '#include "eqd/core/a.hpp"\n#include "local.hpp"\n' > "$t/src/io/link.cpp"
  printf '#include "eqd/config/config.hpp"\n' > "$t/src/discovery/merge.cpp"
  printf '#include "eqd/control/server.hpp"\n#include <eqd/metrics/exporter.hpp>\n' > "$t/src/app/app.cpp"
  printf '#include "eqd/control/protocol.hpp"\n' > "$t/src/cli/main.cpp"
  printf '#include "eqd/daemon/logging.hpp"\n' > "$t/src/history/store.cpp"
  printf '#include "eqd/history/audit.hpp"\n' > "$t/include/eqd/control/server.hpp"
  printf '// #include "eqd/app/app.hpp" is not an include\n' > "$t/include/eqd/daemon/notes.hpp"
  expect clean 0 "" "$t"

  printf '#include "eqd/io/link.hpp"\n' > "$t/src/core/bad.cpp"
  expect core-includes-io 1 "src/core/bad.cpp:1: core includes eqd/io/" "$t"
  rm "$t/src/core/bad.cpp"

  printf '#pragma once\n\n#include <eqd/control/server.hpp>\n' > "$t/include/eqd/daemon/bad.hpp"
  expect daemon-includes-control 1 "include/eqd/daemon/bad.hpp:3: daemon includes eqd/control/" "$t"
  rm "$t/include/eqd/daemon/bad.hpp"

  printf '#include "eqd/metrics/exporter.hpp"\n' > "$t/include/eqd/control/bad.hpp"
  expect sibling-control-metrics 1 "control includes eqd/metrics/" "$t"
  rm "$t/include/eqd/control/bad.hpp"

  mkdir -p "$t/src/config"
  printf '#include "eqd/discovery/merge.hpp"\n' > "$t/src/config/bad.cpp"
  expect config-includes-discovery 1 "config includes eqd/discovery/" "$t"
  rm "$t/src/config/bad.cpp"

  printf '#include "eqd/control/server.hpp"\n' > "$t/src/history/bad.cpp"
  expect history-includes-control 1 "src/history/bad.cpp:1: history includes eqd/control/" "$t"
  rm "$t/src/history/bad.cpp"

  printf '#include "eqd/history/store.hpp"\n' > "$t/src/daemon/bad.cpp"
  expect daemon-includes-history 1 "daemon includes eqd/history/" "$t"
  rm "$t/src/daemon/bad.cpp"

  printf '#include "eqd/app/app.hpp"\n' > "$t/src/cli/bad.cpp"
  expect cli-includes-app 1 "cli includes eqd/app/" "$t"
  rm "$t/src/cli/bad.cpp"

  printf '#include "../app/app.hpp"\n' > "$t/src/core/rel.cpp"
  expect relative-include 1 "src/core/rel.cpp:1: relative include leaving its folder" "$t"
  rm "$t/src/core/rel.cpp"

  mkdir -p "$t/src/gadgets"
  printf '#include "eqd/core/a.hpp"\n' > "$t/src/gadgets/g.cpp"
  expect unknown-layer 1 "gadgets is not a known layer" "$t"
  rm -r "$t/src/gadgets"

  expect clean-again 0 "" "$t"
  return $self_fail
}

case ${1:-} in
  --self-test) self_test; exit $? ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "check_layers: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
check "$root"
rc=$?
if [ "$rc" -eq 0 ]; then echo "check_layers: no include runs back up the layers ($root)"; fi
exit "$rc"
