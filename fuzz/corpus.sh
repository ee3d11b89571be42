#!/usr/bin/env bash
# Keeps the fuzz corpora between machines: each target's corpus, minimised (`cargo fuzz cmin`: the smallest set of
# inputs with the same coverage), as one compressed archive under fuzz/corpora/, committed. A new machine's
# `fuzz/seed.sh` unpacks them, so its runs continue from the coverage earlier runs reached instead of from the seeds.
#   fuzz/corpus.sh save [TARGET...]   minimise corpus/TARGET and write corpora/TARGET.tar.xz (default: every target
#                                     with a corpus); stop that target's fuzzer first. Inputs are truncated to the
#                                     target's largest (common.sh; MAX_LEN=N overrides), as its fuzzer reads them.
#                                     Then the inputs cmin dropped are offered to the AddressSanitizer build
#                                     `plateau.sh` replays with, which adds back any that covers what the kept
#                                     ones do not in that build (an edge, or an edge's count in a range of
#                                     libFuzzer's they never reach)
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
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for t in "${targets[@]}"; do
      [ -d "corpus/$t" ] || { echo "no corpus/$t" >&2; exit 2; }
      before=$(ls "corpus/$t" | wc -l)
      rm -rf "$scratch/full"
      mkdir "$scratch/full"
      cp -r "$(link_or_copy "corpus/$t" "$scratch/full")" "corpus/$t"/. "$scratch/full"/
      cargo +nightly fuzz cmin -O --debug-assertions -s none "$t" "corpus/$t" -- \
        -max_len="$(max_len "$t")" -timeout=60 -rss_limit_mb=2048 -close_fd_mask=3 >/dev/null 2>&1
      after=$(ls "corpus/$t" | wc -l)
      # cmin keeps the inputs with features of the build that fuzzes; `plateau.sh` counts edges of the
      # AddressSanitizer build, which inlines differently, so an input cmin dropped may be the only one to run an edge
      # the replay counts, and the next series would find that edge again as if it were new. The inputs cmin dropped
      # are offered again to that build (libFuzzer's merge: one is added if it has a feature, an edge or an edge's
      # count in one of libFuzzer's ranges, the kept ones lack).
      rm -rf "$scratch/dropped"
      mkdir "$scratch/dropped"
      LC_ALL=C comm -23 <(ls "$scratch/full" | LC_ALL=C sort) <(ls "corpus/$t" | LC_ALL=C sort) |
        sed "s|^|$scratch/full/|" | xargs -r cp -t "$scratch/dropped"
      replay_build "$t"
      LD_PRELOAD="$shim" "$replayer" -merge=1 -max_len="$(max_len "$t")" -timeout=60 -rss_limit_mb=4096 \
        -detect_leaks=0 -close_fd_mask=3 "corpus/$t" "$scratch/dropped" >"$scratch/merge.log" 2>&1 ||
        { tail -20 "$scratch/merge.log" >&2; exit 2; }
      kept=$(ls "corpus/$t" | wc -l)
      tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C corpus -c "$t" | xz -6 -T1 >"corpora/$t.tar.xz"
      printf '%s: %s inputs, %s after cmin, %s with those the replay build needs, %s bytes archived\n' \
        "$t" "$before" "$after" "$kept" "$(stat -c %s "corpora/$t.tar.xz")"
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
