#!/usr/bin/env bash
# Checks that an `eqctl report --format html` file is self-contained and renders: it names no URL
# (no http:, no //host, no src=/href=/url()/@import, no <script>), and headless Chromium, without a
# network (a network namespace of its own: unshare -n, or -rn when not root), screenshots it with its
# charts drawn: PNG pixels of both bar colours (#d9534f without, #2e7d32 with equalization) and text.
# Usage: report_html_chromium.sh FILE.html WORKDIR. Exits 0 on success, 1 with why.
set -uo pipefail
HTML=$1 WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
command -v chromium >/dev/null || { echo "report_html_chromium: chromium is not installed (Debian package chromium; scripts/setup.sh --with test)"; exit 1; }
if grep -Eaiq 'https?:|ftp:|//[a-z0-9]|src=|href=|url\(|@import|<script|<link|<iframe|<object' "$HTML"; then
  echo "report_html_chromium: $HTML refers to something outside itself:"
  grep -Eaio '.{0,40}(https?:|ftp:|//[a-z0-9]|src=|href=|url\(|@import|<script|<link|<iframe|<object).{0,40}' "$HTML" | head -5
  exit 1
fi
NS=(unshare -n)
[ "$(id -u)" = 0 ] || NS=(unshare -rn)
PNG=$WORK/report.png
rm -f "$PNG"
# --user-data-dir of its own: no profile of the caller is read or written.
timeout 90 "${NS[@]}" chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$WORK/chromium-profile" --window-size=1000,1400 --screenshot="$PNG" "file://$(realpath "$HTML")" \
  >"$WORK/chromium.log" 2>&1
RC=$?
[ -s "$PNG" ] || { echo "report_html_chromium: chromium wrote no screenshot (rc $RC):"; tail -5 "$WORK/chromium.log"; exit 1; }
COUNTS=$(python3 "$HERE/png_pixels.py" "$PNG" d9534f 2e7d32 222222) || { echo "report_html_chromium: $COUNTS"; exit 1; }
echo "report_html_chromium: $(echo "$COUNTS" | tr '\n' ' ')"
awk -F= '
  /non_background/ { nb = $2 } /^d9534f/ { red = $2 } /^2e7d32/ { green = $2 } /^222222/ { text = $2 }
  END { if (nb < 20000 || red < 300 || green < 300 || text < 300) exit 1 }' <<<"$(echo "$COUNTS" | tr ' ' '\n')" ||
  { echo "report_html_chromium: the screenshot lacks the charts or the text (blank or unstyled page)"; exit 1; }
exit 0
