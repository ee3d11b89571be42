#!/usr/bin/env bash
# Generate the synthetic corpus (examples/gen_corpus.rs) and time `skillbook check` and `skillbook build` on it
# with hyperfine. Rerun from anywhere:  bench/run.sh
#
# Settings (environment variables, defaults shown):
#   AGENTS=1000 SKILLS=100 PATTERNS=5000 SEED=1   corpus size and PRNG seed (same values = identical corpus)
#   CORPUS=/tmp/corpus  BUILD_OUT=/tmp/corpus-build  RESULTS=/tmp/skillbook-bench
#   WARMUP=2 RUNS=10                  hyperfine settings for check (and build, unless overridden below)
#   BUILD_WARMUP=$WARMUP BUILD_RUNS=$RUNS SKIP_BUILD=   build's own settings; SKIP_BUILD=1 times only check
# `build` also writes the docs site, which at the default size is far slower than check (and needs a lot of
# memory); for a quick look use a smaller corpus, e.g. AGENTS=100 SKILLS=10 PATTERNS=500, or BUILD_RUNS=3.
# Needs hyperfine (apt-get install -y hyperfine, or cargo install hyperfine) and taskset (util-linux).
set -euo pipefail

cd "$(dirname "$0")/.."
AGENTS=${AGENTS:-1000}
SKILLS=${SKILLS:-100}
PATTERNS=${PATTERNS:-5000}
SEED=${SEED:-1}
CORPUS=${CORPUS:-/tmp/corpus}
BUILD_OUT=${BUILD_OUT:-/tmp/corpus-build}
RESULTS=${RESULTS:-/tmp/skillbook-bench}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-10}
BUILD_WARMUP=${BUILD_WARMUP:-$WARMUP}
BUILD_RUNS=${BUILD_RUNS:-$RUNS}
SKIP_BUILD=${SKIP_BUILD:-}

for tool in hyperfine taskset; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool not found (apt-get install -y $tool)" >&2; exit 2; }
done

cargo build --release --bin skillbook --example gen_corpus
mkdir -p "$RESULTS"
# Time a copy, so that a concurrent `cargo build` cannot swap the binary in the middle of a run.
cp target/release/skillbook "$RESULTS/skillbook"
BIN=$RESULTS/skillbook
GEN=$PWD/target/release/examples/gen_corpus

rm -rf "$CORPUS" "$BUILD_OUT"
"$GEN" "$CORPUS" --agents "$AGENTS" --skills "$SKILLS" --patterns "$PATTERNS" --seed "$SEED"
# Its agents have up to 150 patterns: their compiled prompts need more than the default agent-budget (8,000).
printf '[book]\ntitle = "corpus"\n\n[preprocessor.skillbook]\ncontent = "."\nagent-budget = 16000\n' > "$CORPUS"/book.toml

echo "== machine"
echo "nproc: $(nproc)"
lscpu | grep 'Model name' || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BIN" --version
echo "== corpus"
echo "size: $(du -sh "$CORPUS" | cut -f1), files: $(find "$CORPUS" -type f | wc -l)"

echo "== sanity check (expect exit 0 and 0 errors)"
set +e
"$BIN" check "$CORPUS" --quiet | tail -n 1
status=${PIPESTATUS[0]}
set -e
echo "check exit status: $status"
if [ "$status" -ne 0 ]; then
    echo "bench/run.sh: the corpus does not check clean; not timing it" >&2
    exit 1
fi

echo "== check"
hyperfine --warmup "$WARMUP" --runs "$RUNS" \
    --export-json "$RESULTS/check.json" --export-markdown "$RESULTS/check.md" \
    "$BIN check $CORPUS --quiet" \
    "taskset -c 0 $BIN check $CORPUS --quiet"

rm -f "$RESULTS/build.json" "$RESULTS/build.md"
if [ -z "$SKIP_BUILD" ]; then
    echo "== build"
    hyperfine --warmup "$BUILD_WARMUP" --runs "$BUILD_RUNS" --prepare "rm -rf $BUILD_OUT" \
        --export-json "$RESULTS/build.json" --export-markdown "$RESULTS/build.md" \
        "$BIN build $CORPUS --out $BUILD_OUT -q"
    echo "build output: $(du -sh "$BUILD_OUT" | cut -f1), files: $(find "$BUILD_OUT" -type f | wc -l)"
fi

echo "== medians"
if command -v python3 >/dev/null; then
    python3 - "$RESULTS/check.json" "$RESULTS/build.json" <<'EOF'
import json, os, sys
for path in filter(os.path.exists, sys.argv[1:]):
    for r in json.load(open(path))["results"]:
        print(f"{r['median']:8.3f} s  (mean {r['mean']:.3f} ± {r['stddev']:.3f} s)  {r['command']}")
EOF
else
    grep -h '"median"\|"command"' "$RESULTS"/*.json
fi
echo "results: $(ls "$RESULTS"/*.json "$RESULTS"/*.md | tr '\n' ' ')"
