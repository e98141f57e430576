#!/usr/bin/env bash
# Runs tap and ends with one plain summary line ("N passed, N failed, N skipped")
# that any CI reader understands; the exit code is tap's. When something failed,
# a digest of the failures (the subtest path and the first lines of tap's
# diagnostics) is printed just before the summary, so a reader who only sees
# the tail of the output still learns which test failed and why.
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
tap "$@" 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: ' "$out" | tail -1)
num() { printf '%s' "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
if grep -qE '^[[:space:]]*not ok ' "$out"; then
  echo
  echo "=== failures (subtest path, then the first lines of the diagnostics) ==="
  awk '
    function indent(s) { match(s, /^ */); return RLENGTH }
    /^ *# Subtest: / { d = indent($0) / 4; name = $0; sub(/^ *# Subtest: /, "", name); path[d] = name; depth = d; next }
    /^ *not ok / {
      d = indent($0) / 4; p = ""
      for (i = 0; i < d; i++) p = p (i ? " > " : "") path[i]
      print "--- " (p == "" ? "" : p " > ") substr($0, indent($0) + 1)
      show = 30; at = indent($0); shown++
      if (shown > 40) { print "(more failures left out)"; exit }
      next
    }
    show > 0 && indent($0) > at { print; show--; next }
    { show = 0 }
  ' "$out" | head -400
  echo "=== end of failures ==="
fi
if [ -n "$summary" ]; then
  echo "$(num pass) passed, $(num fail) failed, $(num skip) skipped"
else
  echo "0 passed, 1 failed"
  [ "$code" = 0 ] && code=1
fi
exit "$code"
