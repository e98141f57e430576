#!/usr/bin/env bash
# Runs tap and ends with one plain summary line ("N passed, N failed, N skipped")
# that any CI reader understands; the exit code is tap's. When something failed,
# a digest of the failures (the subtest path and the first lines of tap's
# diagnostics) is printed just before the summary, so a reader who only sees
# the tail of the output still learns which test failed and why.
#
# With no arguments (npm test) it runs in two phases: every file that is not
# listed in package.json `tap.serial`, two at a time, then the serial ones
# (fault scenarios and the HA cluster) one at a time. tap alone sorts the
# files by name and, at each serial file, waits for the running ones to end
# and then runs the next parallel file alone until the following serial one:
# a core idle for minutes (about 290 s of stop 20's 1,429 s). With arguments
# it is one tap run over them, as before (a folder stands for its *.test.ts files).
set -uo pipefail
# Node's compile cache (the TypeScript it strips and V8's code cache) for every
# process of the run: test files, the servers and agents they start, each
# `skiff` command. Loading the import graph of a cluster test fell from about
# 2 s to 0.5 s once cached (measured on this 2-core machine).
export NODE_COMPILE_CACHE="${NODE_COMPILE_CACHE:-$PWD/node_modules/.cache/node-compile}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
code=0
if [ "$#" -eq 0 ]; then
  all=$(tap list) || { echo "tap list failed"; echo "0 passed, 1 failed"; exit 1; }
  serial=$(node -e 'for (const s of require("./package.json").tap.serial ?? []) console.log(s.replace(/\/$/, ""))')
  par=(); ser=()
  while IFS= read -r f; do
    [ -z "$f" ] && continue
    hit=0
    while IFS= read -r s; do
      [ -z "$s" ] && continue
      case "$f" in "$s"|"$s"/*) hit=1 ;; esac
    done <<< "$serial"
    if [ "$hit" = 1 ]; then ser+=("$f"); else par+=("$f"); fi
  done <<< "$all"
  echo "# phase 1: ${#par[@]} files, two at a time"
  tap "${par[@]}" 2>&1 | tee -a "$out"
  c=${PIPESTATUS[0]}; [ "$c" != 0 ] && code=$c
  if [ "${#ser[@]}" -gt 0 ]; then
    echo "# phase 2: ${#ser[@]} serial files (package.json tap.serial), one at a time"
    tap --jobs 1 "${ser[@]}" 2>&1 | tee -a "$out"
    c=${PIPESTATUS[0]}; [ "$c" != 0 ] && code=$c
  fi
else
  # tap finds .ts test files in a folder only with its typescript plugin, which
  # package.json turns off (Node strips the types): folders become their files here.
  args=()
  for a in "$@"; do
    if [ -d "$a" ]; then
      while IFS= read -r f; do args+=("$f"); done < <(find "$a" -name '*.test.ts' | sort)
    else
      args+=("$a")
    fi
  done
  tap "${args[@]}" 2>&1 | tee "$out"
  code=${PIPESTATUS[0]}
fi
summary=$(grep -E '^# \{ total: ' "$out")
num() { printf '%s\n' "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }'; }
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
