#!/usr/bin/env bash
# bpe-openai versus tiktoken-rs: agreement and throughput on the shipped content, start-up per process, and the
# size each adds to a release binary. Needs hyperfine (apt-get install -y hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --example tokenizer_bench --example size_bpe --example size_tiktoken --example size_none
target/release/examples/tokenizer_bench throughput
hyperfine -N --warmup 3 --runs 30 --export-json /tmp/tokenizer-startup.json \
  'target/release/examples/tokenizer_bench startup-bpe' \
  'target/release/examples/tokenizer_bench startup-tiktoken'
python3 - <<'PY'
import json
for r in json.load(open('/tmp/tokenizer-startup.json'))['results']:
    print(f"start-up median {r['median']*1e3:.1f} ms: {r['command']}")
PY
for b in size_none size_bpe size_tiktoken; do
  strip -o /tmp/$b target/release/examples/$b
  printf '%-14s %8d bytes stripped\n' "$b" "$(stat -c %s /tmp/$b)"
done
