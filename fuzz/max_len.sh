# The largest input libFuzzer makes for each target (`-max_len`), in one place: `run.sh` fuzzes with it and
# `corpus.sh save` minimises with it (an input longer than it is truncated to it, as the fuzzer reads it), and
# `series.sh` runs `run.sh`. MAX_LEN=N overrides it for one run. Sourced, not run.
#   regex  800    the target skips patterns over 256 bytes and haystacks over 512
#   task   8192   a task text and one pattern file; longer only makes each run slower
#   book   40000  its seeds include mdBook's 17 KB index.hbs beside a content tree
#   others 16384
# `plateau.sh` and `coverage.sh` replay with 40,000, the largest, so a replay never truncates.
max_len() {
  if [ -n "${MAX_LEN:-}" ]; then
    echo "$MAX_LEN"
    return
  fi
  case $1 in
    regex) echo 800 ;;
    task) echo 8192 ;;
    book) echo 40000 ;;
    *) echo 16384 ;;
  esac
}
