#pragma once
// Bulk refill of one memcached member from the members of the other pool (issue 10, docs/ARCHITECTURE.md
// "Bulk refill"). For each peer: `lru_crawler metadump hash` (falling back to `all`), keep the keys whose owner on
// the target pool's ring (ketama over member names, exactly the sidecar's) is the target, then in pipelined
// batches: `mg <k> v f t c` on the peer, `ms <k> <len> T F ME c` (add: never overwrites) on the target, and, after
// `verify_delay`, `mg <k> c` on the peer again: a key that is gone or changed there is taken back from the target
// with `md <k> C<cas of our copy>` (only if it is still our copy), so a delete that raced the copy is not undone.
//
// Blocking I/O with deadlines on the caller's thread (the refill manager's): one batch in flight per connection.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace memha::refill {

struct RefillMember {
  std::string name;     // ring identity (pod name)
  std::string address;  // host:port
  bool operator==(const RefillMember&) const = default;
};

struct RefillJob {
  std::string pool;                // the primary pool's Service "ns/name" (status, events, logs)
  std::string role;                // "primary" | "backup": the pool the target is in
  RefillMember target;
  std::vector<std::string> ring;   // the target pool's member names in topology order: the sidecar's ring
  std::vector<RefillMember> peers; // the other pool's members that are up
  std::vector<std::string> peer_ring;  // the other pool's member names in topology order (the owner of a key there)
  // Handover after a ring change (docs/ARCHITECTURE.md "Scaling"): only keys that moved onto the target since
  // `old_ring` are handled. With `fenced`, copies of such keys already on the target whose CAS is at or below
  // `fence` (stored before the change: from an earlier era, e.g. 2 -> 3 -> 2 members) are first checked against
  // the peer that owns the key: kept when equal, deleted (md C<cas>) otherwise; then the missing ones are copied.
  std::vector<std::string> old_ring;
  bool fenced = false;
  uint64_t fence = 0;
  bool handover() const { return !old_ring.empty(); }
  bool operator==(const RefillJob&) const = default;
  std::string Describe() const;
};

struct RefillLimits {
  double keys_per_second = 20000;         // <= 0: unlimited
  double bytes_per_second = 32 << 20;     // value bytes written to the target; <= 0: unlimited
  size_t batch = 64;                      // keys per pipelined batch
  std::chrono::milliseconds io_timeout{2000};
  std::chrono::milliseconds verify_delay{1000};  // copy -> re-read on the peer (see the header comment)
  int busy_retries = 20;                  // metadump answered BUSY: retried every 500 ms this many times
  // Tests: called with the keys of a batch found on the peer, after the read and before the write to the target.
  std::function<void(const std::vector<std::string>& keys)> after_peer_read;
  // Called after each batch with the cursor's owned/processed (the manager's progress gauge).
  std::function<void(uint64_t owned, uint64_t processed)> on_progress;
  Status Validate() const;
};

// Monotonic counters of one manager (all runs); read by metrics at any time.
struct RefillCounters {
  std::atomic<uint64_t> dumped{0};     // metadump records parsed
  std::atomic<uint64_t> bad_lines{0};  // metadump lines that were not records
  std::atomic<uint64_t> owned{0};      // records owned by the target (after de-duplication)
  std::atomic<uint64_t> copied{0};     // stored on the target
  std::atomic<uint64_t> present{0};    // the target had the key already (add refused): left alone
  std::atomic<uint64_t> missing{0};    // gone from the peer (expired, evicted, deleted) before the read
  std::atomic<uint64_t> expiring{0};   // TTL ran out before the copy: skipped
  std::atomic<uint64_t> unsettled{0};  // a placeholder (W/Z: a sidecar's warm-up fill in flight) or stale (X): skipped
  std::atomic<uint64_t> undone{0};     // copied, then the peer's key changed or went away: our copy removed
  std::atomic<uint64_t> key_errors{0}; // per-key error replies (e.g. too large for the target)
  std::atomic<uint64_t> bytes{0};      // value bytes stored on the target
  // Handover sweeps: moved copies on the target from before the ring change, checked against the peer.
  std::atomic<uint64_t> suspect{0};    // checked
  std::atomic<uint64_t> kept{0};       // equal to the peer's: left in place
  std::atomic<uint64_t> dropped{0};    // older or gone on the peer: deleted (if still that copy)
};

// Where a run stopped, per peer member name: resumed from the next key in (ring hash, key) order.
struct RefillCursor {
  struct Peer {
    bool done = false;
    bool started = false;
    uint32_t hash = 0;
    std::string key;
  };
  std::map<std::string, Peer> peers;
  bool swept = false;      // handover: the target's suspect copies were checked
  uint64_t owned = 0;      // keys owned on the peers dumped so far (progress denominator)
  uint64_t processed = 0;  // of those, handled (progress numerator)
};

enum class RefillOutcome { kDone, kAbandoned, kFailed };
std::string_view ToString(RefillOutcome outcome);

struct RefillResult {
  RefillOutcome outcome = RefillOutcome::kDone;
  Status error;  // kFailed: why
};

// Runs `job` until done, failed (I/O error, protocol error: the cursor says where to resume) or `cancel` is set.
RefillResult RunRefill(const RefillJob& job, const RefillLimits& limits, RefillCursor* cursor,
                       RefillCounters* counters, const std::atomic<bool>* cancel);

// Keys that memcached's text tokenizer would split or reject travel base64-encoded with the `b` flag.
bool KeyNeedsBase64(std::string_view key);
std::string Base64(std::string_view bytes);

}  // namespace memha::refill
