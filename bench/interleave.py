#!/usr/bin/env python3
"""Interleaved wall-time comparison of commands, with cold outputs.

    python3 bench/interleave.py CHUNKS ROUNDS NAME=COMMAND ...

Runs every command once per round, in turn, ROUNDS rounds per chunk, and prints each command's median, quartiles,
minimum and median CPU (user + system of the child). Before each run the command's output is removed and `sync` is
run, as `hyperfine --prepare 'rm -rf ...'` does: `--out DIR` of a skillbook command, `BOOK/book` of
`site_book mdbook BOOK`.

    python3 bench/interleave.py --set-aside CHUNKS ROUNDS NAME=COMMAND ...

moves each output aside (a rename into a `.bench-trash` folder beside it) instead of deleting it, and deletes what was
set aside when all chunks are done. On ext4 without a journal (this machine's root file system), a new file is not
given an inode freed less than 5 s before (300 s more while the inode's table block is dirty, as it is once a new
file's inode is written beside it): the allocator steps over each such inode, one look-up per step, so creating N
files after deleting M costs about N x M steps. With `rm -rf` just before each run, a command pays for every file the
harness deleted in the last minutes, in proportion to how many it writes; set aside, neither pays. Fuzzers running from `fuzz/run.sh` are paused (SIGSTOP) during each chunk and resumed
between chunks (libFuzzer's per-input timeout is wall time: keep a chunk under about 40 s).
"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time


def fuzzers():
    out = subprocess.run(
        "pgrep -f '^[^ ]*x86_64-unknown-linux-gnu/release/[a-z]+ '",
        shell=True, capture_output=True, text=True,
    ).stdout.split()
    return [int(p) for p in out]


def clear(path, trash):
    """Removes `path`, or with `trash` moves it into the `.bench-trash` folder beside it."""
    if not os.path.exists(path):
        return
    if trash is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    bin_ = os.path.join(os.path.dirname(os.path.abspath(path)), ".bench-trash")
    os.makedirs(bin_, exist_ok=True)
    trash.add(bin_)
    os.rename(path, os.path.join(bin_, f"{len(os.listdir(bin_))}"))


def main():
    args = sys.argv[1:]
    trash = None
    if args and args[0] == "--set-aside":
        trash = set()
        args = args[1:]
    chunks, rounds = int(args[0]), int(args[1])
    cmds = [a.split("=", 1) for a in args[2:]]
    wall = {n: [] for n, _ in cmds}
    cpu = {n: [] for n, _ in cmds}
    for _ in range(chunks):
        paused = fuzzers()
        for p in paused:
            os.kill(p, signal.SIGSTOP)
        try:
            for _ in range(rounds):
                for name, cmd in cmds:
                    m = re.search(r"--out (\S+)", cmd)
                    if m:
                        clear(m.group(1), trash)
                    m = re.search(r"site_book mdbook (\S+)", cmd)
                    if m:
                        clear(m.group(1) + "/book", trash)
                    subprocess.run("sync", shell=True)
                    t, r0 = time.perf_counter(), os.times()
                    subprocess.run(cmd, shell=True, stdout=subprocess.DEVNULL, check=True)
                    r1 = os.times()
                    wall[name].append(time.perf_counter() - t)
                    cpu[name].append(
                        (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
                    )
        finally:
            for p in paused:
                try:
                    os.kill(p, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        time.sleep(5)
    for b in trash or ():
        shutil.rmtree(b, ignore_errors=True)
    for name, _ in cmds:
        v = sorted(wall[name])
        print(
            f"{name:10s} median {statistics.median(v) * 1000:6.1f} ms  q1 {v[len(v) // 4] * 1000:6.1f} "
            f"q3 {v[3 * len(v) // 4] * 1000:6.1f}  min {v[0] * 1000:6.1f}  "
            f"cpu median {statistics.median(cpu[name]) * 1000:6.1f} ms  (n={len(v)})"
        )


if __name__ == "__main__":
    main()
