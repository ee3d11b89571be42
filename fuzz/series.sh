#!/usr/bin/env bash
# One plateau series: whether a run's second half still finds skillbook's own code (the README's "Where each target
# stands" rule). For each TARGET in turn, pinned to CPU: replays its corpus as it is (`plateau.sh` offset 0), fuzzes it
# SECONDS with every input kept (`KEEP`), replays the corpus at the middle and the end of the fuzzing, and prints the
# whole run and each half (`plateau.sh`'s "by where their code is written": edges on skillbook's own lines, and the
# standard library's and other crates' inlined), with the executions of each half from `run.sh`'s log.
#   fuzz/series.sh DIR CPU SECONDS TARGET...
# DIR keeps the series (DIR/start/TARGET, DIR/all/TARGET, the times, each step's output; DIR/TARGET.series is the
# summary). The replays come before and after the fuzzing, never beside it, so the fuzzer has its CPU to itself.
# `fuzz/corpus.sh save TARGET` afterwards minimises and archives the corpus the run left.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 4 ] || { echo "usage: fuzz/series.sh DIR CPU SECONDS TARGET..." >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
cpu=$2
secs=$3
shift 3
cd "$here"
for t in "$@"; do
  [ -d "corpus/$t" ] || { echo "no corpus/$t: run fuzz/seed.sh or fuzz/corpus.sh load" >&2; exit 2; }
  rm -rf "$dir/start/$t" "$dir/all/$t"
  mkdir -p "$dir/start" "$dir/all/$t"
  cp -al "corpus/$t" "$dir/start/$t" 2>/dev/null || cp -a "corpus/$t" "$dir/start/$t"
  t0=$(date +%s)
  rep() { CORPUS="$dir/all/$t" taskset -c "$cpu" bash plateau.sh "$t" "$dir/start/$t" "$t0" "$@"; }
  rep 0 >"$dir/$t.start.out" 2>&1
  cargo +nightly fuzz build -O --debug-assertions -s none "$t" >"$dir/$t.build.log" 2>&1
  fs=$(date +%s)
  KEEP="$dir/all/$t" TIMEOUT=60 taskset -c "$cpu" bash run.sh "$t" "$secs" >"$dir/$t.run.out" 2>&1
  fe=$(date +%s)
  half=$(((fe - fs) / 2))
  mid=$((fs - t0 + half))
  end=$((fe - t0))
  rep "$mid" >"$dir/$t.mid.out" 2>&1
  rep "$end" >"$dir/$t.end.out" 2>&1
  log=$(sed -n 's/^log: //p' "$dir/$t.run.out")
  first=$(awk -v h=$half '$1 <= h && $2 ~ /^#[0-9]/ {l = substr($2, 2)} END {print l + 0}' "$log")
  all=$(awk '$2 ~ /^#[0-9]/ {l = substr($2, 2)} END {print l + 0}' "$log")
  {
    head -1 "$dir/$t.run.out"
    echo "$t: fuzzing from +$((fs - t0)) s to +$end s; runs: first half $first, second half $((all - first))"
    rep 0 "$mid" "$end"
    echo "$t: the first half"
    rep 0 "$mid" | sed -n '/by where/,$p'
    echo "$t: the second half"
    rep "$mid" "$end" | sed -n '/by where/,$p'
  } >"$dir/$t.series" 2>&1
  cat "$dir/$t.series"
done
