#!/usr/bin/env bash
# Save-to-reload latency of `skillbook serve`: the time from an editor's save (a temporary file renamed over a
# pattern file) to the `{"type":"reload"}` message on the live-reload websocket, which the server sends once the new
# output is completely in place. Measured by examples/watch_latency.rs, for the default content and for the
# generated corpus (examples/gen_corpus.rs); for the corpus also examples/incremental.rs, which times the incremental
# engine alone (reload, check, expand and bundle; no site, no write). Rerun from anywhere:  bench/watch.sh
#
# Settings (environment variables, defaults shown):
#   RUNS=10                    saves timed on the default content (0 skips it)
#   ENGINE_RUNS=5              saves timed on the corpus by examples/incremental.rs (0 skips it)
#   CORPUS_RUNS=1              saves timed on the corpus through `serve` (0 skips it; the site of 1,000 agents is
#                              rendered whole by mdBook on every save: expect about half an hour per build)
#   AGENTS=1000 SKILLS=100 PATTERNS=5000 SEED=1   corpus size and PRNG seed (as bench/run.sh)
#   TIMEOUT=3600               seconds any one build may take
# Both trees are copied to a temporary directory first: the benchmark edits them.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
ENGINE_RUNS=${ENGINE_RUNS:-5}
CORPUS_RUNS=${CORPUS_RUNS:-1}
AGENTS=${AGENTS:-1000}
SKILLS=${SKILLS:-100}
PATTERNS=${PATTERNS:-5000}
SEED=${SEED:-1}
TIMEOUT=${TIMEOUT:-3600}

cargo build --release --bin skillbook --example watch_latency --example incremental --example gen_corpus
BIN=$PWD/target/release/skillbook
LAT=$PWD/target/release/examples/watch_latency
INC=$PWD/target/release/examples/incremental
GEN=$PWD/target/release/examples/gen_corpus

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== machine"
echo "nproc: $(nproc)"
lscpu | grep 'Model name' || true

if [ "$RUNS" -gt 0 ]; then
    echo "== default content (book.toml, content/, theme/): edit content/skills/distributed-systems/patterns/raft.md"
    mkdir -p "$work/default"
    cp -r book.toml content "$work/default/"
    [ -d theme ] && cp -r theme "$work/default/"
    "$LAT" "$BIN" "$work/default" content/skills/distributed-systems/patterns/raft.md \
        --runs "$RUNS" --out "$work/default-out" --timeout-secs "$TIMEOUT"
fi

if [ "$ENGINE_RUNS" -gt 0 ] || [ "$CORPUS_RUNS" -gt 0 ]; then
    echo "== corpus ($AGENTS agents, $SKILLS skills, $PATTERNS patterns)"
    "$GEN" "$work/corpus" --agents "$AGENTS" --skills "$SKILLS" --patterns "$PATTERNS" --seed "$SEED" >/dev/null
    # Its agents have up to 150 patterns: their compiled prompts need more than the default agent-budget (8,000).
    printf '[book]\ntitle = "corpus"\n\n[preprocessor.skillbook]\ncontent = "."\nagent-budget = 16000\n' > "$work/corpus"/book.toml
    file=$(cd "$work/corpus" && ls skills/skill-001/patterns/*.md | head -n 1)
    echo "edited file: $file (its skill is used by $(grep -l 'skill-001\b' "$work/corpus"/agents/*.md | wc -l) agents)"
fi
if [ "$ENGINE_RUNS" -gt 0 ]; then
    echo "== corpus, incremental engine only (no site, no write)"
    "$INC" "$work/corpus" "$file" --runs "$ENGINE_RUNS"
fi
if [ "$CORPUS_RUNS" -gt 0 ]; then
    echo "== corpus, through serve"
    "$LAT" "$BIN" "$work/corpus" "$file" \
        --runs "$CORPUS_RUNS" --out "$work/corpus-out" --timeout-secs "$TIMEOUT"
fi
