#!/usr/bin/env bash
# Regenerate the README's screenshots in docs/ from a fresh demo on a fixed day, so the
# pictures match the README's demo output: the HTML report and a customer statement as
# headless Chromium renders them, and the XLSX report as LibreOffice prints it.
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

shot "$demo/reports/pcsync-$as_of.html" 1280,1800 "$root/docs/report-screenshot.png"
statement=$(ls "$demo"/statements/statement-*-"$as_of".html | head -n 1)
shot "$statement" 1000,1500 "$root/docs/statement-screenshot.png"

# The workbook as it prints: LibreOffice's PDF of it (the workbook's own print setup:
# landscape, one page wide, the as-of date and page numbers in the footer), at 80 dpi,
# the page of the Customers sheet.
libreoffice -env:UserInstallation="file://$work/libreoffice" --headless \
  --convert-to pdf --outdir "$work/pdf" "$demo/reports/pcsync-$as_of.xlsx" >/dev/null 2>&1
pdf=$work/pdf/pcsync-$as_of.pdf
page=1
while ! pdftotext -f "$page" -l "$page" "$pdf" - | grep -q "^Customers as of"; do
  page=$((page + 1))
  [ "$page" -le 50 ] || { echo "docs/screenshots.sh: no Customers sheet in $pdf" >&2; exit 1; }
done
pdftoppm -png -r 80 -f "$page" -l "$page" -singlefile "$pdf" "$root/docs/xlsx-screenshot"
echo "$root/docs/xlsx-screenshot.png"
