/* The same "random" bytes in every process, for fuzz/plateau.sh's replays (LD_PRELOAD).
 * Rust's std seeds each HashMap's SipHash keys from getrandom(2) (RandomState), and skillbook's dependencies use such
 * maps (serde_json's Map, an IndexMap with preserve_order, among them): their probes, and so which branches run, differ
 * from process to process, and two replays of the same inputs count a few edges apart. With this preloaded std reads
 * these bytes instead (it calls glibc's getrandom, a weak symbol this library comes before), and 400 inputs replayed in
 * five processes counted the same edges in each (a whole corpus differed by up to 2 until every input ran on a thread
 * of its own, whose keys std draws afresh: on_own_thread, fuzz/src/lib.rs). Nothing else in a replay draws random
 * bytes: libFuzzer seeds itself from the clock. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/types.h>

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
  (void)flags;
  memset(buf, 0x5a, len);
  return (ssize_t)len;
}
