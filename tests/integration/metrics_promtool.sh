#!/bin/sh
# Run promtool with the given arguments; exit 77 (CTest: skipped) when promtool is not installed, so
# that a machine without Debian's `prometheus` package shows the test as skipped, never as passed.
# Usage: metrics_promtool.sh PROMTOOL_PATH_OR_EMPTY ARGS...
promtool="$1"
shift
case "$promtool" in
  ""|*-NOTFOUND)
    echo "promtool not found: apt-get install -y prometheus" >&2
    exit 77 ;;
esac
exec "$promtool" "$@"
