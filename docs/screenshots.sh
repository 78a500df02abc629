#!/usr/bin/env bash
# Regenerate the README's screenshots in docs/ from a fresh demo on a fixed day, so the
# pictures match the README's demo output: the HTML report (its top, and its margin
# section) and a customer statement as headless Chromium renders them at 1280 px and
# 1000 px wide, and the XLSX report's Customers, Lines and Margin sheets as LibreOffice
# prints them.
#
#   bash docs/screenshots.sh        (needs chromium, libreoffice, and pdftoppm and pdftotext from poppler-utils)
#
# PCSYNC overrides the pcsync to run (default: .venv/bin/pcsync of this clone).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pcsync=${PCSYNC:-$root/.venv/bin/pcsync}
day=2026-12-01     # the demo stands on 2026-11-30, as in the README
as_of=2026-11-30
browser=$(command -v chromium || command -v chromium-browser || true)
for tool in "$browser" libreoffice pdftoppm pdftotext; do
  if [ -z "$tool" ] || ! command -v "$tool" >/dev/null; then
    echo "docs/screenshots.sh: needs chromium, libreoffice and pdftoppm (poppler-utils)" >&2
    exit 2
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && "$pcsync" demo --dir demo --today "$day" >/dev/null 2>"$work/demo.log") || {
  cat "$work/demo.log" >&2
  exit 1
}
demo=$work/demo

shot() { # page, window width,height, png
  "$browser" --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
    --user-data-dir="$work/chromium" --force-device-scale-factor=1 \
    --window-size="$2" --screenshot="$3" "file://$1" >/dev/null 2>&1
  echo "$3"
}

report=$demo/reports/pcsync-$as_of.html
shot "$report" 1280,1800 "$root/docs/report-screenshot.png"
# The margin section further down: the same page with the sections between the heading
# and the margin table hidden (a chromium --screenshot cannot scroll).
sed 's|<h2>Margin</h2>|<h2 id="margin">Margin</h2>|; s|</head>|<style>main>h2#actions,main>h2#actions~*{display:none}main>h2#margin,main>h2#margin~*{display:revert}</style></head>|' \
  "$report" >"$work/margin.html"
grep -q 'id="margin"' "$work/margin.html" || { echo "docs/screenshots.sh: no margin section in $report" >&2; exit 1; }
shot "$work/margin.html" 1280,1100 "$root/docs/report-margin-screenshot.png"
statement=$(ls "$demo"/statements/statement-*-"$as_of".html | head -n 1)
shot "$statement" 1000,1500 "$root/docs/statement-screenshot.png"

# The workbook as it prints: LibreOffice's PDF of it (the workbook's own print setup:
# landscape, one page wide, the as-of date and page numbers in the footer), at 110 dpi,
# the first page of the Customers, Lines and Margin sheets.
libreoffice -env:UserInstallation="file://$work/libreoffice" --headless \
  --convert-to pdf --outdir "$work/pdf" "$demo/reports/pcsync-$as_of.xlsx" >/dev/null 2>&1
pdf=$work/pdf/pcsync-$as_of.pdf
sheet() { # sheet title, png name: the first page whose text starts with the sheet's title row
  local page=1
  # each page's text to a file, not a pipe: grep -q stopping early fails a pipe under pipefail
  until pdftotext -f "$page" -l "$page" "$pdf" "$work/page.txt" 2>/dev/null &&
    grep -q "^$1 as of" "$work/page.txt"; do
    page=$((page + 1))
    [ "$page" -le 50 ] || { echo "docs/screenshots.sh: no $1 sheet in $pdf" >&2; exit 1; }
  done
  pdftoppm -png -r 110 -f "$page" -l "$page" -singlefile "$pdf" "$root/docs/$2"
  echo "$root/docs/$2.png"
}
sheet Customers xlsx-screenshot
sheet Lines xlsx-lines-screenshot
sheet Margin xlsx-margin-screenshot
