# What the fuzz scripts share, in one place. Sourced, not run.

# max_len TARGET: the largest input libFuzzer makes for TARGET (`-max_len`). `run.sh` fuzzes with it and
# `corpus.sh save` minimises with it (an input longer than it is truncated to it, as the fuzzer reads it); `series.sh`
# runs `run.sh`. MAX_LEN=N overrides it for one run. `plateau.sh` and `coverage.sh` replay with `replay_max_len`,
# the largest of them, so a replay never truncates.
#   regex  800    the target skips patterns over 256 bytes and haystacks over 512
#   task   8192   a task text and one pattern file; longer only makes each run slower
#   book   40000  its seeds include mdBook's 17 KB index.hbs beside a content tree
#   others 16384
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
replay_max_len=40000

# link_or_copy FROM TO: `-l` (cp makes hard links) if a file of folder FROM can be hard-linked into folder TO (the
# same file system), else `-p` (cp copies, keeping the files' modification times, which `plateau.sh` reads).
link_or_copy() {
  local probe
  probe=$(find "$1" -maxdepth 1 -type f -print -quit)
  if [ -n "$probe" ] && ln "$probe" "$2/.link-probe" 2>/dev/null; then
    rm -f "$2/.link-probe"
    echo -l
  else
    echo -p
  fi
}

# replay_build TARGET: builds TARGET as `plateau.sh` replays it, with AddressSanitizer (libFuzzer prints function
# coverage only with a sanitizer's symbolizer) into fuzz/target/asan, beside the `-s none` build that fuzzes, and
# `fixed-random.c`, which gives std's hash seeds the same bytes in every process (without it two replays of the same
# inputs differ by a few edges: the nineteenth session, 400 `pipeline` inputs, 8,866 to 8,869 edges of src/). Sets
# `replayer` (the binary) and `shim` (for LD_PRELOAD). Run from fuzz/.
replay_build() {
  local asan host
  asan=${ASAN_TARGET_DIR:-$PWD/target/asan}
  host=$(rustc -vV | sed -n 's/^host: //p')
  cargo +nightly fuzz build -O -s address --target-dir "$asan" "$1" >/dev/null 2>&1 ||
    { echo "the AddressSanitizer build failed: run \`cargo +nightly fuzz build -O -s address --target-dir $asan $1\`" >&2; exit 2; }
  replayer="$asan/$host/release/$1"
  shim="$PWD/target/fixed-random.so"
  if [ ! -s "$shim" ] || [ fixed-random.c -nt "$shim" ]; then
    mkdir -p target
    cc -shared -fPIC -O2 -o "$shim" fixed-random.c ||
      { echo "building $shim failed: replaying needs a C compiler (cc)" >&2; exit 2; }
  fi
}
