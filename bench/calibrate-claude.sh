#!/usr/bin/env bash
# Calibrates skillbook's `claude` token estimate: for every markdown file of the shipped content (and the seed),
# compares the exact o200k count with Anthropic's published offline tokenizer (@anthropic-ai/tokenizer, from npm,
# installed into a temporary directory: a development-time tool only, never a dependency of skillbook).
# Prints per-file ratios and the maximum; CLAUDE_FACTOR in src/tokenize.rs must be at least that maximum.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && npm install --silent @anthropic-ai/tokenizer@0.0.4 >/dev/null)
files=$(find content tests/fixtures/seed -name '*.md' | sort)
cargo run -q --release --example token_counts -- $files > "$tmp/o200k.tsv"
cat > "$tmp/ratio.js" <<'JS'
const { countTokens } = require('@anthropic-ai/tokenizer');
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map(l => l.split('\t'));
let max = 0, sumC = 0, sumO = 0;
for (const [path, o200k] of rows) {
  const c = countTokens(fs.readFileSync(path, 'utf8'));
  const r = c / Number(o200k);
  sumC += c; sumO += Number(o200k);
  max = Math.max(max, r);
  console.log(`${path}\t${o200k}\t${c}\t${r.toFixed(3)}`);
}
console.log(`total\t${sumO}\t${sumC}\t${(sumC / sumO).toFixed(3)}`);
console.log(`max ratio ${max.toFixed(3)}`);
JS
NODE_PATH="$tmp/node_modules" node "$tmp/ratio.js" "$tmp/o200k.tsv"
