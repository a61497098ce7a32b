#!/usr/bin/env bash
# check_docs_anet.sh ANEC SRC — every ```anet fenced block of SRC/README.md
# and SRC/docs/*.md passes `ANEC check`. A block whose fence is preceded
# (blank lines aside) by the line
#   <!-- anet-error: EXPECTED MESSAGE -->
# must instead fail (exit status 1) with EXPECTED MESSAGE in the output;
# one preceded by <!-- anet-skip --> is not checked (for a block that cannot
# be made complete; prefer complete examples). Each failure is reported as
# FILE:LINE (the fence's line), with anec's messages located in the document.
# Fences are recognized at the start of a line only.
set -euo pipefail
anec=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$src"
docs=(README.md docs/*.md)

# Every ```anet block as a file BLOCK.anet, with BLOCK.meta holding
# "DOC<TAB>FENCE-LINE<TAB>MODE<TAB>EXPECTED" (MODE: ok, error or skip).
awk -v out="$tmp" '
  function unclosed() {
    printf "%s:%d: error: ```anet block without its closing fence\n", doc, start
    bad = 1
  }
  FNR == 1 {
    if (fence == "anet") unclosed()
    doc = FILENAME; fence = ""; mode = "ok"; want = ""
  }
  fence == "" && /^```/ {
    if ($0 ~ /^```anet[ \t]*$/) {
      fence = "anet"; start = FNR; n++
      base = sprintf("%s/block%03d", out, n)
      printf "" > (base ".anet")
      printf "%s\t%d\t%s\t%s\n", doc, start, mode, want > (base ".meta")
      close(base ".meta")
    } else {
      fence = "other"
    }
    next
  }
  fence != "" && /^```[ \t]*$/ {
    if (fence == "anet") close(base ".anet")
    fence = ""; mode = "ok"; want = ""
    next
  }
  fence == "anet" { print > (base ".anet"); next }
  fence == "other" { next }
  /^[ \t]*$/ { next }  # blank lines between a marker and its fence
  /^<!-- anet-skip -->[ \t]*$/ { mode = "skip"; want = ""; next }
  /^<!-- anet-error: .* -->[ \t]*$/ {
    mode = "error"; want = $0
    sub(/^<!-- anet-error: /, "", want); sub(/ -->[ \t]*$/, "", want)
    next
  }
  { mode = "ok"; want = "" }
  END {
    if (fence == "anet") unclosed()
    exit bad
  }
' "${docs[@]}" || { echo "check_docs_anet: unterminated blocks" >&2; exit 1; }

fail=0 checked=0 skipped=0
for meta in "$tmp"/block*.meta; do
  [ -e "$meta" ] || break
  IFS=$'\t' read -r doc line mode want <"$meta"
  block=${meta%.meta}.anet
  if [ "$mode" = skip ]; then
    skipped=$((skipped + 1))
    continue
  fi
  checked=$((checked + 1))
  rc=0
  out=$("$anec" check "$block" 2>&1) || rc=$?
  # anec's "BLOCK.anet:L:C:" as the document's "DOC:LINE:C:", and the
  # quoted lines' "   L |" as the document's line numbers too
  located=$(awk -v f="$block" -v doc="$doc" -v base="$line" '
    index($0, f ":") == 1 {
      rest = substr($0, length(f) + 2)
      if (match(rest, /^[0-9]+/)) {
        print doc ":" (substr(rest, 1, RLENGTH) + base) substr(rest, RLENGTH + 1)
        next
      }
    }
    match($0, /^ *[0-9]+ \|/) {
      n = substr($0, 1, RLENGTH - 2) + base
      printf("%" (RLENGTH - 2) "d%s\n", n, substr($0, RLENGTH - 1))
      next
    }
    { print }' <<<"$out")
  if [ "$mode" = ok ] && [ "$rc" -ne 0 ]; then
    printf '%s:%s: error: this ```anet block fails anec check (exit status %d):\n%s\n' \
      "$doc" "$line" "$rc" "$located" >&2
    fail=1
  elif [ "$mode" = error ] && { [ "$rc" -ne 1 ] || ! grep -qF -- "$want" <<<"$out"; }; then
    printf '%s:%s: error: this ```anet block should fail anec check (exit status 1) with "%s"; exit status %d:\n%s\n' \
      "$doc" "$line" "$want" "$rc" "$located" >&2
    fail=1
  fi
done

if [ "$checked" -eq 0 ]; then
  echo "check_docs_anet: no \`\`\`anet blocks found in ${docs[*]}" >&2
  exit 1
fi
if [ "$fail" -ne 0 ]; then
  echo "check_docs_anet: some \`\`\`anet blocks of the documentation fail (see above)" >&2
  exit 1
fi
echo "check_docs_anet: $checked \`\`\`anet blocks checked, $skipped skipped"
