#!/usr/bin/env bash
# Issue #11's measurement: `skillbook build` of a project against mdBook's build of the same pages (dumped by
# `examples/site_book dump` as a plain mdBook project), side by side in one hyperfine run, outputs on one file system.
#   bench/vs_mdbook.sh DIR [MODE]           (from anywhere; needs hyperfine and `cargo build --release --examples`)
# DIR: a folder on the file system to measure (`/dev/shm/x`, `/tmp/x`, a mounted image); the pages are dumped into
# DIR/book once, outputs go to DIR/out and DIR/book/book. MODE says how each run starts:
#   rm    `--prepare 'rm -rf OUTPUT'`: no previous output (the default)
#   mv    `--prepare` renames the previous output into DIR/trash: no previous output and no inode freed during the
#         run (on an ext4 without a journal a freed inode costs every file created in the next minutes: README,
#         Performance, sixteenth session); the trash is deleted at the end
#   none  each tool replaces its own previous output, as a user's next build does
# PROJECT (default: the repository, its shipped content), SKILLBOOK (default target/release/skillbook), RUNS (30),
# WARMUP (3). Prints hyperfine's lines and one line of medians: skillbook, mdBook, their ratio, and system times.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: bench/vs_mdbook.sh DIR [rm|mv|none]}
mode=${2:-rm}
project=$(cd "${PROJECT:-$repo}" && pwd)
skillbook=${SKILLBOOK:-$repo/target/release/skillbook}
site_book=$repo/target/release/examples/site_book
for tool in hyperfine python3 "$skillbook" "$site_book"; do
    command -v "$tool" >/dev/null || { echo "bench/vs_mdbook.sh: $tool not found (hyperfine: apt-get install -y hyperfine; the binaries: cargo build --release --examples --bins)" >&2; exit 2; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ -d "$dir/book" ] || "$site_book" dump "$project" "$dir/book" >/dev/null
case $mode in
    rm) p1="rm -rf $dir/out"; p2="rm -rf $dir/book/book" ;;
    mv) mkdir -p "$dir/trash"
        p1="sh -c 'mv $dir/out $dir/trash/out.\$(date +%s%N) 2>/dev/null; true'"
        p2="sh -c 'mv $dir/book/book $dir/trash/book.\$(date +%s%N) 2>/dev/null; true'" ;;
    none) p1=true; p2=true ;;
    *) echo "bench/vs_mdbook.sh: MODE is rm, mv or none, not $mode" >&2; exit 2 ;;
esac
json=$(mktemp)
trap 'rm -f "$json"' EXIT
cd "$project"
hyperfine -N -w "${WARMUP:-3}" -r "${RUNS:-30}" --export-json "$json" \
    --prepare "$p1" "$skillbook build -q . --out $dir/out" \
    --prepare "$p2" "$site_book mdbook $dir/book"
python3 - "$json" "$dir" "$mode" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"]
m = [statistics.median(x["times"]) * 1000 for x in r]
s = [x["system"] * 1000 for x in r]
print(f"{sys.argv[2]} {sys.argv[3]}: skillbook {m[0]:.1f} ms, mdBook {m[1]:.1f} ms (medians): {m[0] / m[1]:.3f}x; "
      f"system time {s[0]:.1f} and {s[1]:.1f} ms")
EOF
[ "$mode" != mv ] || rm -rf "$dir/trash"
