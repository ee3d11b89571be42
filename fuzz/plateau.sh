#!/usr/bin/env bash
# Whether a fuzz run still finds new code of skillbook's, or only new states of the crates it calls.
# libFuzzer's `cov` counts the edges of every crate in the binary: the syntect grammars the `book` and `pipeline`
# targets highlight with, fancy-regex, the YAML and Markdown parsers, handlebars. Its figure keeps growing as long as
# any of them has states left to find, which on a two-core machine is longer than any session. This replays the
# corpus as it stood at checkpoints of a run and counts the edges of skillbook's own functions (src/, and vendor/ on
# its own line) that it runs, so a run can be read for the code it exists to test.
#   fuzz/plateau.sh TARGET START_CORPUS START_TIME OFFSET...
# START_CORPUS: a copy of corpus/TARGET taken when the run began (libFuzzer replaces inputs by smaller ones with the
# same features as it goes, so the folder itself no longer holds the starting set); START_TIME: when the run began
# (seconds since the epoch, `date +%s`); OFFSET: seconds after it (`0` is the start). The corpus at an offset is
# START_CORPUS with every file of corpus/TARGET (or $CORPUS: the folder of every input the run wrote, which
# `KEEP=DIR fuzz/run.sh` keeps) written before that moment. Each is replayed without
# fuzzing (`-runs=0 -print_coverage=1`) by an AddressSanitizer build (libFuzzer prints function coverage only with a
# sanitizer's symbolizer), built as `fuzz/coverage.sh` builds it, into fuzz/target/asan. A replay takes minutes (the
# `book` corpus of 11,000 inputs: about six), so its result is kept in fuzz/target/plateau/ and a later call with
# the same run and offset prints it again: offsets can be replayed while the run goes on, and compared at the end.
# One line per offset: inputs, edges of src/ (and of how many functions), edges of vendor/, and libFuzzer's cov of
# the whole binary for the same inputs; then which of skillbook's functions gained edges from the first offset given
# to the last, and where the code of those edges is written: most are the standard library's or another crate's code
# inlined into skillbook's functions (a `Vec` that grows, an iterator), a few skillbook's own lines, listed.
#   fuzz/plateau.sh TARGET --corpora DIR...
# The same for whole corpus folders, each replayed as it is: the corpus before and after a run, such as two committed
# archives of it unpacked (`git show REV:fuzz/corpora/TARGET.tar.xz | xz -d | tar -x -C DIR`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=$1
if [ "${2:-}" = --corpora ]; then
  shift 2
  dirs=()
  for d in "$@"; do dirs+=("$(cd "$d" && pwd)"); done
else
  start_corpus=$(cd "$2" && pwd)
  t0=$3
  shift 3
  offsets=("$@")
fi
cd "$here"
. ./common.sh
corpus=${CORPUS:-corpus/$target}
root="$(cd .. && pwd)/"
# Built with AddressSanitizer and replayed with std's hash seeds fixed (common.sh's `replay_build`). Results are
# kept by build: a replay by another build of the target (the tree changed since) is not comparable, so every offset
# given in one call is replayed by the build this call made, and an older result is never mixed in. Results replayed
# without fixed-random.c (folders named by the build alone) are not mixed in either.
replay_build "$target"
build=$(sha1sum "$replayer" | cut -c1-12)
kept="$here/target/plateau/$build.fixed-random"
mkdir -p "$kept"
# One CPU (the first this script may use): a target that finds one core runs skillbook's single-threaded paths,
# as a fuzzer pinned with `taskset` does, and without threads racing for the highlighting cache, with skillbook's own
# maps seeded alike (since the sixteenth session) and std's (above), and each input on a thread of its own (whose
# hash keys std draws afresh, so they do not depend on the inputs before it: since the twentieth session), a replay
# of the same inputs runs the same code.
cpu=$(taskset -cp $$ | sed 's/.*: *//; s/[-,].*//')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# replayed KEY: whether KEY was replayed before (by a version of this script that kept everything it now keeps).
replayed() { [ -s "$1.line" ] && [ -e "$1.pcs" ]; }
# replay KEY LABEL DIR: replays DIR (unless KEY was replayed before) and prints its line; its edges are in KEY.edges.
replay() {
  local name=$1 label=$2 dir=$3 log
  if ! replayed "$name"; then
    [ -d "$dir" ] || { echo "plateau.sh: $label: no corpus folder to replay (a bug of this script)" >&2; exit 2; }
    log="$scratch/replay.log"
    LD_PRELOAD="$shim" taskset -c "$cpu" "$replayer" -runs=0 -print_coverage=1 -detect_leaks=0 -max_len="$replay_max_len" -timeout=120 \
      -rss_limit_mb=4096 -close_fd_mask=1 -artifact_prefix="$scratch/" "$dir" >"$log" 2>&1 || true
    # One pass over the log, three files. `COVERED_FUNC: hits: N edges: A/B NAME PATH:LINE`: A of the function's B
    # edges ran; its KIND is src or vendor by the function's file. KEY.edges: "KIND<tab>NAME PATH:LINE<tab>A", one
    # line per function (copies of a generic summed). `  UNCOVERED_PC: PATH:LINE` follows the line of a function that
    # ran: an edge of it no input ran. KEY.uncovered: "PATH:LINE", once per line, for lines of src/ and vendor/: what
    # the corpus does not reach yet, in the functions it does. KEY.pcs: "KIND<tab>WHERE<tab>COUNT", the unrun edges of
    # src/'s and vendor/'s functions by the line their code is written on, which is another crate's or the standard
    # library's where the compiler inlined it (`Vec::push`'s growth, an iterator, serde_json's map) into skillbook's
    # function: a later corpus's new edges are these counts going down, so the script can tell how many are on
    # skillbook's own lines and how many are other code's states inlined into them. KEY.fpcs: the same counts by
    # function too ("KIND<tab>NAME PATH:LINE<tab>WHERE<tab>COUNT"), so a comparison can leave out the functions one
    # side did not run: a function first run brings its unrun edges along, which would read as edges lost.
    : >"$scratch/edges"; : >"$scratch/uncovered"; : >"$scratch/pcs"; : >"$scratch/fpcs"
    awk -v root="$root" -v edges="$scratch/edges" -v uncovered="$scratch/uncovered" -v pcs="$scratch/pcs" \
      -v fpcs="$scratch/fpcs" '
      /^COVERED_FUNC: / {
        kind = index($NF, root "src/") == 1 ? "src" : index($NF, root "vendor/") == 1 ? "vendor" : ""
        if (kind != "") {
          split($5, e, "/"); name = $6; for (i = 7; i <= NF; i++) name = name " " $i
          sub(root, "", name); sum[kind "\t" name] += e[1]
        }
      }
      /^  UNCOVERED_PC: / {
        at = $2
        if (index(at, root "src/") == 1 || index(at, root "vendor/") == 1) {
          line = at; sub(root, "", line); if (line !~ /:0$/) print line >uncovered
        }
        if (kind != "") {
          sub(root, "", at); sub(/^\/rustc\/[0-9a-f]+\//, "rustc/", at)
          sub(/^.*\/\.cargo\/registry\/src\/[^\/]+\//, "crates/", at); n[kind "\t" at]++; f[kind "\t" name "\t" at]++
        }
      }
      END {
        for (k in sum) print k "\t" sum[k] >edges; for (k in n) print k "\t" n[k] >pcs
        for (k in f) print k "\t" f[k] >fpcs
      }' "$log"
    LC_ALL=C sort -t $'\t' -k1,2 "$scratch/edges" >"$name.edges"
    LC_ALL=C sort -u "$scratch/uncovered" >"$name.uncovered"
    LC_ALL=C sort "$scratch/pcs" >"$name.pcs"
    LC_ALL=C sort "$scratch/fpcs" >"$name.fpcs"
    local src vendor cov
    src=$(awk -F '\t' '$1 == "src" {s += $3; n++} END {printf "%d edges in %d functions", s, n}' "$name.edges")
    vendor=$(awk -F '\t' '$1 == "vendor" {s += $3} END {print s + 0}' "$name.edges")
    cov=$(grep -m1 -oE 'INITED cov: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    printf '%s %s: %6d inputs; src/ %s; vendor/ %d edges; libFuzzer cov (whole binary) %s\n' \
      "$target" "$label" "$(ls "$dir" | wc -l)" "$src" "$vendor" "$cov" >"$name.line"
  fi
  cat "$name.line"
}
keys=()
labels=()
if [ -n "${dirs+x}" ]; then
  for d in "${dirs[@]}"; do
    # Keyed by the folder's file names (libFuzzer names inputs by their SHA-1): the same corpus is replayed once.
    key="$kept/$target.corpora.$(ls "$d" | sha1sum | cut -c1-16)"
    replay "$key" "$d" "$d"
    keys+=("$key")
    labels+=("$d")
  done
else
  for off in "${offsets[@]}"; do
    t=$((t0 + off))
    [ "$t" -le "$(date +%s)" ] || { echo "+$off s is still to come" >&2; exit 2; }
    key="$kept/$target.$t0.$off"
    if ! replayed "$key"; then
      dir="$scratch/corpus.$off"
      mkdir "$dir"
      cp "$(link_or_copy "$start_corpus" "$scratch")" "$start_corpus"/* "$dir"/
      # Files of the run written before the moment (the start corpus's own files have the same names: kept once). A
      # running fuzzer deletes the inputs it replaces by smaller ones, so a file may be gone when its turn comes: that
      # is skipped (the smaller one has its features), any other failure stops the script.
      find "$corpus" -maxdepth 1 -type f ! -newermt "@$t" -print0 |
        xargs -0 -r cp "$(link_or_copy "$corpus" "$scratch")" -f -t "$dir" 2>"$scratch/cp.err" ||
        { ! grep -v 'No such file or directory' "$scratch/cp.err" >&2 || exit 2; }
    fi
    replay "$key" "$(printf '+%5d s' "$off")" "${dir:-}"
    rm -rf "${dir:-}"
    dir=""
    keys+=("$key")
    labels+=("+$off s")
  done
fi
# Every function whose edges changed, and the sums. With CORPUS the folder `fuzz/run.sh` kept (KEEP=DIR) a later
# corpus holds every input of an earlier one, so an edge lost comes from state one input leaves to the next in the
# replaying process (the highlighting cache, emptied when full, now at another input; `memory::release_read_only_data`,
# which reads the process's own memory map), or from std's hash keys in builds before each input ran on a thread of
# its own (an input's keys depended on the inputs before it) and in results replayed before fixed-random.c.
# corpus/TARGET itself loses inputs: libFuzzer deletes one it
# has replaced by a smaller input with the same features, features of the build that fuzzed, and the
# AddressSanitizer build that replays may count an edge only the deleted input ran.
echo "$target: functions of src/ and vendor/ whose edges changed from ${labels[0]} to ${labels[-1]} (before -> after):"
awk -F '\t' 'NR == FNR {before[$1 "\t" $2] = $3; next}
    { after[$1 "\t" $2] = $3 }
    END {
      for (k in before) if (!(k in after)) after[k] = 0
      for (k in after) {
        b = before[k] + 0; a = after[k]
        if (a == b) continue
        split(k, f, "\t"); printf "  %s %s: %d -> %d\n", f[1], f[2], b, a
        if (a > b) { up[f[1]] += a - b; nu[f[1]]++ } else { down[f[1]] += b - a; nd[f[1]]++ }
      }
      for (kind in up) printf "%s: +%d edges in %d functions\n", kind, up[kind], nu[kind]
      for (kind in down) printf "%s: -%d edges in %d functions (lost: see the comment above)\n", kind, down[kind], nd[kind]
    }' "${keys[0]}.edges" "${keys[-1]}.edges" | LC_ALL=C sort
# Where the new edges of skillbook's functions are written: on skillbook's own lines (src/), a vendored crate's, or
# another crate's or the standard library's inlined into them. Counted over the functions both corpora ran (with
# KEY.fpcs: replays by this script since the twenty-seventh session; older ones count every function, so a function
# first run reads there as edges lost); a function first run is new code outright and is counted on a line of its own
# (its edges by line are not known: libFuzzer lists a function's unrun edges only).
if [ -f "${keys[0]}.pcs" ] && [ -f "${keys[-1]}.pcs" ]; then
  echo "$target: new edges of src/'s functions by where their code is written, from ${labels[0]} to ${labels[-1]}:"
  if [ -f "${keys[0]}.fpcs" ] && [ -f "${keys[-1]}.fpcs" ]; then
    # "KIND<tab>WHERE<tab>COUNT" of the functions that ran in both, as KEY.pcs is for all.
    for k in "${keys[0]}" "${keys[-1]}"; do
      awk -F '\t' 'FILENAME == ARGV[1] { ran1[$1 "\t" $2]; next } FILENAME == ARGV[2] { ran2[$1 "\t" $2]; next }
          ($1 "\t" $2) in ran1 && ($1 "\t" $2) in ran2 { n[$1 "\t" $3] += $4 }
          END { for (w in n) print w "\t" n[w] }' "${keys[0]}.edges" "${keys[-1]}.edges" "$k.fpcs" |
        LC_ALL=C sort >"$scratch/$(basename "$k").both"
    done
    pcs=("$scratch/$(basename "${keys[0]}").both" "$scratch/$(basename "${keys[-1]}").both")
    lost="state left by other inputs"
  else
    pcs=("${keys[0]}.pcs" "${keys[-1]}.pcs")
    lost="a function first run, or state left by other inputs"
  fi
  awk -F '\t' -v lost="$lost" 'NR == FNR { if ($1 == "src") before[$2] = $3; next }
      $1 == "src" { after[$2] = $3 }
      END {
        for (k in after) if (!(k in before)) before[k] = 0
        for (k in before) {
          d = before[k] - after[k]
          if (d == 0) continue
          w = k ~ /^src\// ? "skillbook (src/)" : k ~ /^vendor\// ? "vendored crates (vendor/)" : k ~ /^rustc\// ? "the standard library, inlined" : "other crates, inlined"
          if (d > 0) gained[w] += d; else down[w] -= d
          if (w == "skillbook (src/)") lines[k] = d
        }
        for (w in gained) printf "0\t  %s: +%d\n", w, gained[w]
        for (w in down) printf "1\t  %s: -%d (%s)\n", w, down[w], lost
        for (k in lines) printf "2\t    %s: %+d\n", k, lines[k]
      }' "${pcs[0]}" "${pcs[1]}" | LC_ALL=C sort -t $'\t' -k1,1 -k2,2V | cut -f2-
  awk -F '\t' 'NR == FNR { if ($1 == "src") ran[$2]; next }
      $1 == "src" && !($2 in ran) { n++; e += $3 }
      END { if (n) printf "  skillbook (src/), functions first run: %d, with %d edges (listed above as 0 -> N)\n", n, e }' \
    "${keys[0]}.edges" "${keys[-1]}.edges"
fi
# Where the new edges are, by line: the lines that had an edge no input of the first corpus ran and have none in the
# last (of functions the first ran; a function first run later gains edges shown above only).
if [ -f "${keys[0]}.uncovered" ] && [ -f "${keys[-1]}.uncovered" ]; then
  reached=$(LC_ALL=C comm -23 "${keys[0]}.uncovered" "${keys[-1]}.uncovered")
  echo "$target: lines with an edge no input ran at ${labels[0]} and none at ${labels[-1]}: $(grep -c . <<<"$reached" || true) (lines still with one: $(wc -l <"${keys[-1]}.uncovered"))"
  [ -z "$reached" ] || LC_ALL=C sort -t: -k1,1 -k2,2n <<<"$reached" | sed 's/^/  /'
fi
