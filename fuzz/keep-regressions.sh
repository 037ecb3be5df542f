#!/usr/bin/env bash
# Replaces regressions/<target>/ with at most MAX (default 200) inputs of corpus/<target>/
# that together reach the most coverage edges: libFuzzer's edge-only merge, then the edges of
# each input it keeps, then a greedy cover (most new edges first; the smaller file on a tie).
# Run in fuzz/ after a run (and `cargo fuzz cmin <target>`): ./keep-regressions.sh <target> [MAX]
set -euo pipefail
cd "$(dirname "$0")"
target=$1
max=${2:-200}
bin=target/x86_64-unknown-linux-gnu/release/$target
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/edges"
"$bin" -merge=1 -use_counters=0 "$work/edges" "corpus/$target" >/dev/null 2>&1
# libFuzzer's control file lists, per input, the edges it reached first: run each input
# alone to get all of its edges.
for input in "$work"/edges/*; do
  rm -rf "$work/one" && mkdir -p "$work/one/in" "$work/one/out" && cp "$input" "$work/one/in/"
  "$bin" -merge=1 -use_counters=0 -merge_control_file="$work/one/control" "$work/one/out" "$work/one/in" >/dev/null 2>&1
  echo "$input $(grep '^COV' "$work/one/control" | cut -d' ' -f3-)"
done >"$work/edges.txt"

rm -rf "regressions/$target" && mkdir -p "regressions/$target"
python3 - "$work/edges.txt" "regressions/$target" "$max" <<'PY'
import os, shutil, sys
edges_file, out, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
edges = {}
for line in open(edges_file):
    path, *ids = line.split()
    edges[path] = set(ids)
everything = set().union(*edges.values())
size = {path: os.path.getsize(path) for path in edges}
covered, kept = set(), []
while len(kept) < cap:
    best = max(edges, key=lambda p: (len(edges[p] - covered), -size[p]))
    if not edges[best] - covered:
        break
    kept.append(best)
    covered |= edges[best]
for path in kept:
    shutil.copy(path, out)
print(f"{out}: {len(kept)} inputs, {sum(size[p] for p in kept)} bytes, "
      f"{len(covered)} of the {len(everything)} edges the corpus reaches")
PY
