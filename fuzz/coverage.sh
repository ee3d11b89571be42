#!/usr/bin/env bash
# Which of skillbook's functions each target's corpus runs, and whether it runs the ones the target exists to test.
# A coverage figure that stops growing says the fuzzer found nothing new, not that the target reaches its code; this
# says the second.
#   fuzz/coverage.sh [TARGET...]      (default: every target with a corpus; after `fuzz/seed.sh`)
# Builds the targets once with AddressSanitizer into fuzz/target/asan (libFuzzer prints function coverage only with a
# sanitizer's symbolizer; the `-s none` build the fuzzers run is left alone), replays corpus/TARGET without fuzzing
# (`-runs=0 -print_coverage=1`), and prints per target how many of skillbook's own functions (src/ and vendor/) it runs (those left as
# functions after inlining). The functions it does not run go to coverage/TARGET.txt, those it runs to
# coverage/TARGET.run.txt.
# reach/TARGET lists the functions the target must run, one per line: a piece of the symbol as libFuzzer prints it
# (`skillbook::bundle::Bundler>::prepared`). One that the corpus does not run, or that is not in the binary at all
# (renamed, or inlined everywhere), is printed and the script exits 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
. ./common.sh
root="$(cd .. && pwd)/"
asan=${ASAN_TARGET_DIR:-$here/target/asan}
host=$(rustc -vV | sed -n 's/^host: //p')
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls corpus)
fi
cargo +nightly fuzz build -O -s address --target-dir "$asan" >/dev/null 2>&1 ||
  { echo "the AddressSanitizer build failed: run \`cargo +nightly fuzz build -O -s address --target-dir $asan\`" >&2; exit 2; }
mkdir -p coverage
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${targets[@]}"; do
  [ -d "corpus/$t" ] || { echo "no corpus/$t (run fuzz/seed.sh)" >&2; exit 2; }
  log="$scratch/$t.log"
  # Leaks are not looked for: a thread's thread-local destructors registered at exit show as a 32-byte leak.
  "$asan/$host/release/$t" -runs=0 -print_coverage=1 -detect_leaks=0 -max_len="$replay_max_len" -timeout=60 \
    -rss_limit_mb=4096 -close_fd_mask=1 -artifact_prefix="$scratch/" "corpus/$t" >"$log" 2>&1 || true
  # `COVERED_FUNC: hits: N edges: A/B NAME PATH:LINE`, NAME may hold spaces; only functions of skillbook's src/ and
  # of the crates it vendors (vendor/: the `regex` target is there for fancy-regex's speed-ups).
  awk -v root="$root" '/^(UN)?COVERED_FUNC: / && (index($NF, root "src/") == 1 || index($NF, root "vendor/") == 1) {
      name = $6; for (i = 7; i < NF; i++) name = name " " $i
      print ($1 == "COVERED_FUNC:" ? "+" : "-") " " name " " substr($NF, length(root) + 1) }' "$log" |
    sort -u >"$scratch/$t.funcs"
  ran=$(grep -c '^+ ' "$scratch/$t.funcs" || true)
  all=$(wc -l <"$scratch/$t.funcs")
  inputs=$(ls "corpus/$t" | wc -l)
  grep '^- ' "$scratch/$t.funcs" | cut -c3- >"coverage/$t.txt" || true
  grep '^+ ' "$scratch/$t.funcs" | cut -c3- >"coverage/$t.run.txt" || true
  if [ "$all" -eq 0 ]; then
    echo "$t: no function coverage printed (did the replay fail? see below)" >&2
    tail -20 "$log" >&2
    status=1
    continue
  fi
  printf '%s: %s inputs run %s of %s functions of src/ and vendor/ (%s%%); not run: fuzz/coverage/%s.txt\n' \
    "$t" "$inputs" "$ran" "$all" "$((100 * ran / all))" "$t"
  [ -f "reach/$t" ] || continue
  while IFS= read -r want; do
    case "$want" in '' | '#'*) continue ;; esac
    # Files, not pipes: under `pipefail` a `grep -q` that stops reading early fails the pipe (SIGPIPE).
    if grep -F -q -- "$want" "coverage/$t.run.txt"; then
      continue
    elif grep -F -q -- "$want" "coverage/$t.txt"; then
      echo "  $t never runs $want" >&2
    else
      echo "  $t: no function matches $want (renamed, or inlined everywhere? fix reach/$t)" >&2
    fi
    status=1
  done <"reach/$t"
done
exit $status
