#!/usr/bin/env bash
# Writes the seed corpora under fuzz/corpus/<target>/ from tests/fixtures/ and content/ (real plugin files), and
# unpacks the committed corpora of earlier runs (fuzz/corpora/, written by fuzz/corpus.sh save).
# Run from anywhere; existing corpus files are kept (libFuzzer adds to them as it runs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
corpus="$here/corpus"
mkdir -p "$corpus"/{frontmatter,roundtrip,markdown,manifest,pipeline,site,book,serve,task,regex}
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

# Manifests: 0 + plugin.json, 1 + marketplace.json, 2 + hooks/hooks.json, 3 + .mcp.json.
while IFS= read -r -d '' m; do
  case "$m" in
    *marketplace.json) p=1 ;;
    */hooks/hooks.json) p=2 ;;
    */.mcp.json) p=3 ;;
    *) p=0 ;;
  esac
  next
  { printf '%s' "$p"; cat "$m"; } > "$corpus/manifest/$s"
done < <(find "$repo/tests/fixtures" \( -path '*/.claude-plugin/*.json' -o -path '*/hooks/hooks.json' -o -name .mcp.json \) -type f -print0 | sort -z)

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
# Raw HTML in pages, passed through as mdBook passes it: the text of a `<script>` or `<style>` element is not HTML, so
# the site's rewriting of headings and links must skip it (no seed reached that before).
next
{
  printf '=== .claude-plugin/plugin.json\n{"name": "raw", "version": "0.1.0"}\n'
  printf '=== agents/raw.md\n---\nname: raw\ndescription: Raw HTML in a page.\n---\n\n'
  printf '<script>var h = "<h2 id=x>";</script>\n\n<STYLE>h2 { color: red }</Style>\n\n'
  printf '<details><summary>More</summary>\n\n## Inside\n\n<a href="raw.md">raw</a>\n\n</details>\n'
} > "$corpus/site/$s"
# Books: fixture trees with a book.toml (their own, or one of five: four set the keys of [preprocessor.skillbook] in
# turn, the fifth the [output.html] keys the site reads, with the files it names) and, for some, a theme: the
# repository's bundle templates, mdBook's index.hbs, a small head.hbs.
books=(
  $'[book]\ntitle = "fuzz"\n\n[preprocessor.skillbook]\ncontent = "."\n'
  $'[book]\ntitle = "fuzz"\n\n[preprocessor.skillbook]\ncontent = "."\nbudgets = [200, 2000]\ntokenizer = "o200k"\ncoverage = "all"\n'
  $'[book]\ntitle = "fuzz"\nlanguage = "en"\n\n[preprocessor.skillbook]\ncontent = "."\nagent-budget = 900\ntokenizer = "cl100k"\nstub-pattern = "^<!-- expand -->$"\n'
  $'[book]\ntitle = "fuzz"\n\n[output.html]\nno-section-label = true\n\n[preprocessor.skillbook]\ncontent = "."\nbudgets = [500]\nagent-budget = 4000\ntokenizer = "claude-4.6"\n'
  $'[book]\ntitle = "fuzz"\n\n[output.html]\ntheme = "look"\nadditional-css = ["css/extra.css"]\nadditional-js = ["extra.js"]\ngit-repository-url = "https://example.com/fuzz"\nedit-url-template = "https://example.com/fuzz/edit/{path}"\nsite-url = "/fuzz/"\n\n[output.html.print]\nenable = false\n\n[output.html.redirect]\n"/old.html" = "index.html"\n"/agents/old.html" = "../index.html"\n\n[preprocessor.skillbook]\ncontent = "."\n'
)
# The files the fifth book.toml names: its theme folder, its additional stylesheet and script.
html_files=$'=== look/head.hbs\n<meta name="generator" content="{{ title }}">\n=== css/extra.css\nbody { margin: 0; }\n=== extra.js\nconsole.log("fuzz");\n'
i=0
for d in "$repo"/tests/fixtures/*/ "$repo"/tests/fixtures/broken/*/; do
  [ "$d" = "$repo/tests/fixtures/broken/" ] && continue
  next
  {
    if [ ! -f "$d/book.toml" ]; then
      printf '=== book.toml\n%s' "${books[$((i % 5))]}"
      if [ $((i % 5)) = 4 ]; then printf '%s' "$html_files"; fi
    fi
    [ -f "$d/book.toml" ] && { printf '=== book.toml\n'; cat "$d/book.toml"; }
    case $((i % 3)) in
      1) for f in "$repo"/theme/bundle/*.hbs; do printf '=== theme/bundle/%s\n' "$(basename "$f")"; cat "$f"; done ;;
      2) printf '=== theme/head.hbs\n<meta name="generator" content="{{ title }}">\n' ;;
    esac
    pack "$d"
  } > "$corpus/book/$s"
  i=$((i + 1))
done
next
{ printf '=== book.toml\n%s' "${books[0]}"; printf '=== theme/index.hbs\n'; cat "$repo/src/emit/site/mdbook/templates/index.hbs"; pack "$repo/tests/fixtures/full-plugin/"; } > "$corpus/book/$s"

# Request targets: the table the test suite replays (SERVE_TARGETS in tests/testsuite/fuzz.rs).
while IFS= read -r target; do
  next
  printf '%s' "$target" > "$corpus/serve/$s"
done < <(sed -n '/^pub const SERVE_TARGETS/,/^];/p' "$repo/tests/testsuite/fuzz.rs" | sed -n 's/^ *("\([^"]*\)", [0-9]*),$/\1/p')

# Tasks for `bundle --for`: the table the test suite replays (TASKS in tests/testsuite/fuzz.rs), then the README's
# task with each shipped pattern as the third page (task, 0xFF, pattern).
while IFS= read -r task; do
  next
  printf '%s' "$task" > "$corpus/task/$s"
done < <(sed -n '/^pub const TASKS/,/^];/p' "$repo/tests/testsuite/fuzz.rs" | sed -n 's/^ *("\([^"]*\)", [a-z]*),$/\1/p')
while IFS= read -r -d '' pattern; do
  next
  { printf 'a Horde registry lost names after a netsplit\377'; cat "$pattern"; } > "$corpus/task/$s"
done < <(find "$repo/content" -path '*/patterns/*.md' -type f -print0 | sort -z)

# Patterns (grammar regexes of the Elixir, Erlang and Bash syntaxes the site highlights with, and constructs the
# vendored fancy-regex's speed-ups treat specially), each with code lines of the shipped content as its haystack.
mapfile -t lines < <(awk '/^```/{f=!f; next} f' $(find "$repo/content" -name '*.md' | sort) | awk 'length($0) > 8' | sort -u | awk 'NR % 97 == 1')
while IFS= read -r pattern; do
  for i in 0 1 2; do
    next
    printf '%s\n%s\n' "$pattern" "${lines[$(( (n * 7 + i) % ${#lines[@]} ))]}" > "$corpus/regex/$s"
  done
done <<'PATTERNS'
(?>[\p{L}_][\w@]*(?>[?!])?)(:)(?!:)
(?<=[ \t])!+|\bnot\b|&&|\band\b|\|\||\bor\b|\bxor\b
(?<!\.)\b(do|end|case|for|if|cond|unless|try|receive|fn|defmodule|defp?)\b(?![?!:])
(?=(["'])(?>\\.|(?!\1).)*\1:)
(?<!:)(:)(?>[\p{L}_][\w@]*(?>[?!]|=(?![>=]))?|\<\>|===?|!==?|<<>>|::|<\-|\|>|=>|=~|=)
\b(0x[0-9A-Fa-f](?>_?[0-9A-Fa-f])*|0b[01]+|0o[0-7]+|\d(?>_?\d)*(\.\d(?>_?\d)*)?([eE][-+]?\d(?>_?\d)*)?)\b
(?<!\w)\?(\\(x[0-9A-Fa-f]{1,2}(?![0-9A-Fa-f])\b|[^xMC])|[^\s\\])
\b(fn)\b(?!.*->)
^(?=.*->)((?![^"']*("|'')[^"']*->)|(?=.*->[^"']*("|'')[^"']*->))
\b[A-Z][a-zA-Z0-9_]*\b(?!:)
^\s*(def|defmacro)\s+([\p{L}_]\w*(?:!|\?)?)(?:(\()|\s*)
(?i:\bWHEN\b|k)\K(\w+)\1
\G\s*(\w+)
(?(1)a|b)(x)?
PATTERNS

# The corpora earlier runs reached, minimised and committed (fuzz/corpus.sh save).
"$here/corpus.sh" load >/dev/null

for t in frontmatter roundtrip markdown manifest pipeline site book serve task regex; do
  printf '%s: %s seeds\n' "$t" "$(ls "$corpus/$t" | wc -l)"
done
