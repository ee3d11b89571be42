#!/usr/bin/env bash
# Keeps the fuzz corpora between machines: each target's corpus, minimised (`cargo fuzz cmin`: the smallest set of
# inputs with the same coverage), as one compressed archive under fuzz/corpora/, committed. A new machine's
# `fuzz/seed.sh` unpacks them, so its runs continue from the coverage earlier runs reached instead of from the seeds.
#   fuzz/corpus.sh save [TARGET...]   minimise corpus/TARGET and write corpora/TARGET.tar.xz (default: every target
#                                     with a corpus); stop that target's fuzzer first. Inputs are truncated to the
#                                     target's largest (common.sh; MAX_LEN=N overrides), as its fuzzer reads them
#   fuzz/corpus.sh load               unpack every corpora/*.tar.xz into corpus/ (existing files are kept)
# The archives are deterministic (sorted names, no times or owners): the same corpus gives the same bytes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
. ./common.sh
mkdir -p corpora corpus
case "${1:-}" in
  save)
    shift
    targets=("$@")
    if [ ${#targets[@]} -eq 0 ]; then
      mapfile -t targets < <(ls corpus)
    fi
    for t in "${targets[@]}"; do
      [ -d "corpus/$t" ] || { echo "no corpus/$t" >&2; exit 2; }
      before=$(ls "corpus/$t" | wc -l)
      cargo +nightly fuzz cmin -O --debug-assertions -s none "$t" "corpus/$t" -- \
        -max_len="$(max_len "$t")" -timeout=60 -rss_limit_mb=2048 -close_fd_mask=3 >/dev/null 2>&1
      after=$(ls "corpus/$t" | wc -l)
      tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C corpus -c "$t" | xz -6 -T1 >"corpora/$t.tar.xz"
      printf '%s: %s inputs, %s after cmin, %s bytes archived\n' "$t" "$before" "$after" "$(stat -c %s "corpora/$t.tar.xz")"
    done
    ;;
  load)
    for a in corpora/*.tar.xz; do
      [ -e "$a" ] || continue
      tar -xJf "$a" -C corpus --skip-old-files
      t=$(basename "$a" .tar.xz)
      printf '%s: %s inputs\n' "$t" "$(ls "corpus/$t" | wc -l)"
    done
    ;;
  *)
    echo "usage: fuzz/corpus.sh save [TARGET...] | load" >&2
    exit 2
    ;;
esac
