#!/usr/bin/env bash
# Runs tap and ends with one plain summary line ("N passed, N failed, N skipped")
# that any CI reader understands; the exit code is tap's.
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
tap "$@" 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total: ' "$out" | tail -1)
num() { printf '%s' "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
if [ -n "$summary" ]; then
  echo "$(num pass) passed, $(num fail) failed, $(num skip) skipped"
else
  echo "0 passed, 1 failed"
  [ "$code" = 0 ] && code=1
fi
exit "$code"
