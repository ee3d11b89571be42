#!/usr/bin/env bash
# Writes the seed corpora under fuzz/corpus/<target>/ from tests/fixtures/ and content/ (real plugin files).
# Run from anywhere; existing corpus files are kept (libFuzzer adds to them as it runs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
corpus="$here/corpus"
mkdir -p "$corpus"/{frontmatter,roundtrip,markdown,manifest,pipeline,site}
n=0
next() { n=$((n + 1)); s=$(printf 'seed-%04d' "$n"); }

# Every markdown file: frontmatter, round trip, markdown (agent part).
while IFS= read -r -d '' f; do
  next
  cp "$f" "$corpus/frontmatter/$s"
  cp "$f" "$corpus/roundtrip/$s"
  cp "$f" "$corpus/markdown/$s"
done < <(find "$repo/tests/fixtures" "$repo/content" "$repo/../shared/seeds" -name '*.md' -type f -print0 2>/dev/null | sort -z)

# Agents with each pattern of their tree: markdown (agent, 0xFF, pattern).
while IFS= read -r -d '' agent; do
  top=$(dirname "$(dirname "$agent")")
  while IFS= read -r -d '' pattern; do
    next
    { cat "$agent"; printf '\377'; cat "$pattern"; } > "$corpus/markdown/$s"
  done < <(find "$top" -path '*/patterns/*.md' -type f -print0 | sort -z | head -z -n 4)
done < <(find "$repo/tests/fixtures" "$repo/content" -path '*/agents/*.md' -type f -print0 | sort -z)

# Manifests: 0 + plugin.json, 1 + marketplace.json.
while IFS= read -r -d '' m; do
  case "$m" in
    *marketplace.json) p=1 ;;
    *) p=0 ;;
  esac
  next
  { printf '%s' "$p"; cat "$m"; } > "$corpus/manifest/$s"
done < <(find "$repo/tests/fixtures" -path '*/.claude-plugin/*.json' -type f -print0 | sort -z)

# Whole trees: every fixture directory and content/, as `=== path` sections.
pack() {
  local dir=$1
  (cd "$dir" && find . -type f ! -name book.toml -print0 | sort -z | while IFS= read -r -d '' f; do
    printf '=== %s\n' "${f#./}"
    cat "$f"
    [ -z "$(tail -c 1 "$f")" ] || printf '\n'
  done)
}
for d in "$repo"/tests/fixtures/*/ "$repo"/tests/fixtures/broken/*/ "$repo/content/"; do
  [ "$d" = "$repo/tests/fixtures/broken/" ] && continue
  next
  pack "$d" > "$corpus/pipeline/$s"
  cp "$corpus/pipeline/$s" "$corpus/site/$s"
done
for t in frontmatter roundtrip markdown manifest pipeline site; do
  printf '%s: %s seeds\n' "$t" "$(ls "$corpus/$t" | wc -l)"
done
