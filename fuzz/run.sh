#!/usr/bin/env bash
# Runs one fuzz target for SECONDS on its corpus and prints one summary row: executions, final coverage (libFuzzer's
# `cov`, edges) and features (`ft`), corpus size, when coverage and features last grew, and crashes. Coverage that stopped growing
# long before the end is the plateau the README's "Fuzz runs" table records.
#   fuzz/run.sh TARGET SECONDS      (after `cargo +nightly fuzz build -O --debug-assertions -s none`)
# It then prints, on stderr, the coverage as loaded and at the end of every STEP seconds (default 300), and its log.
# MAX_LEN=N sets libFuzzer's largest input (default: the target's, from common.sh).
# TIMEOUT=S sets libFuzzer's per-input limit (default 10 s): it is wall time, so a run at nice 19 beside builds on every
# core needs more, or the builds' starving it shows as timeouts.
# SANITIZER=address runs under AddressSanitizer instead (about 4x slower; skillbook's code is safe Rust, its
# `unsafe` is a few libc system calls on its own arguments, so the default is none).
# KEEP=DIR keeps every input the run writes in DIR (hard links where it can, else copies with their times), gathered
# every 5 s and once at the end: libFuzzer deletes an input it has replaced by a smaller one with the same features,
# features of this build, so `fuzz/plateau.sh` (given CORPUS=DIR) can replay what the run reached by each moment.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=$1
secs=$2
cd "$here"
. ./common.sh
ml=$(max_len "$target")
mkdir -p "corpus/$target" "artifacts/$target"
log=$(mktemp)
keep() {
  find "corpus/$target" -maxdepth 1 -type f -print0 | xargs -0 -r cp $1 -n -t "$KEEP" 2>/dev/null
}
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  # Hard links share the file's modification time, which plateau.sh reads; copies keep it (-p).
  how=$(link_or_copy "corpus/$target" "$KEEP")
  (while sleep 5; do keep "$how"; done) &
  keeper=$!
  trap 'kill "$keeper" 2>/dev/null' EXIT
fi
start=$(date +%s)
last_new=$start
cargo +nightly fuzz run -O --debug-assertions -s "${SANITIZER:-none}" "$target" "corpus/$target" -- \
  -dict=skillbook.dict -max_total_time="$secs" -max_len="$ml" -timeout="${TIMEOUT:-10}" -rss_limit_mb=2048 \
  -print_final_stats=1 -close_fd_mask=3 2>&1 |
  while IFS= read -r line; do
    now=$(date +%s)
    printf '%d %s\n' "$((now - start))" "$line" >>"$log"
  done
if [ -n "${KEEP:-}" ]; then
  kill "$keeper" 2>/dev/null
  keep "$how"
fi
# When coverage (edges) and features last grew, in seconds from the start.
cov_grew=$(awk '/ cov: /{for(i=1;i<=NF;i++) if($i=="cov:") c=$(i+1); if(c>m){m=c; t=$1}} END{print t}' "$log")
ft_grew=$(awk '/ ft: /{for(i=1;i<=NF;i++) if($i=="ft:") c=$(i+1); if(c>m){m=c; t=$1}} END{print t}' "$log")
last=$(grep -E '^[0-9]+ #[0-9]+' "$log" | tail -1)
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+')
crashes=$(grep -cE '^[0-9]+ ==[0-9]+== ERROR|^[0-9]+ thread .* panicked' "$log")
echo "| \`$target\` | ${secs} s | ${runs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${cov_grew:-?} s | ${ft_grew:-?} s | ${crashes} |"
# Coverage as loaded (INITED: the corpus run once) and at the end of each STEP seconds (default 300), for the README's
# figures of whether a run is still finding edges.
inited=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | grep -oE '[0-9]+$')
steps=$(awk -v step="${STEP:-300}" '/ cov: /{for(i=1;i<=NF;i++) if($i=="cov:") c=$(i+1); s=int($1/step); last[s]=c; if(s>m)m=s}
  END{for(i=0;i<=m;i++) if(i in last) printf "%d s: %s, ", (i+1)*step, last[i]; print ""}' "$log")
echo "coverage at load ${inited:-?}; by ${STEP:-300} s: ${steps%, }" >&2
echo "log: $log" >&2
