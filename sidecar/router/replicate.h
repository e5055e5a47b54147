#pragma once
// Replication to the backup pool, proven against the primary (docs/ARCHITECTURE.md, "Replication").
//
// A mirror leaves only after the primary acknowledged the write, and knows the primary's CAS of the value it
// carries. Once the backup stored it, the primary is asked for the key's CAS again. Equal: no newer write had
// reached the primary when the copy landed, and every newer write's own mirror leaves after its acknowledgement,
// so it lands after this one. Different (another sidecar's newer write, or this mirror arrived after a newer
// one): the primary's current value is copied the same way, a bounded number of times, then the key is deleted
// on the backup. A mirror that cannot be proven (primary unreachable, a member error) deletes the key on the
// backup; one that cannot reach the backup logs the key as missed there (invalidated before it serves again).
// For every key the backup ends up holding the primary's value or nothing.
#include <functional>
#include <string>

#include "sidecar/backend/tunables.h"
#include "sidecar/metrics/metrics.h"
#include "sidecar/router/pool.h"

namespace memha {

struct MirrorTask {
  PoolPtr pool;                // keeps the members alive while the mirror runs
  Member* primary = nullptr;
  Member* backup = nullptr;
  uint32_t hash = 0;
  std::string key;             // decoded (what the missed and repair logs hold)
  std::string key_token;       // as members read it: the key, or its base64 when `base64`
  bool base64 = false;
  std::string line;            // the first write to the backup (an ms); empty: copy the primary's value
  std::string body;            // its value block, with "\r\n"
  uint64_t primary_cas = 0;    // the primary's CAS of that value (0: unknown, so it is re-copied)
  Metrics* metrics = nullptr;
  const Tunables* tunables = nullptr;
  std::function<void(bool stored)> on_stored;  // once, when the first write was stored on the backup or was not
};

// Runs one mirror; counts in the backup's mirror_in_flight while it does.
void StartMirror(MirrorTask task);
// Sends the proofs (primary CAS reads) of the mirrors that landed since the last tick (called every tick).
void RunDeferredVerifies();
void DropDeferredVerifies();  // at exit, before the members go

// The primary's CAS from a meta reply line's c flag (0 without one).
uint64_t CasOfLine(std::string_view line);

// Before a request whose outcome depends on the primary's copy of a key (mg, add, append, incr, cas, ...): on a
// warming primary, or for a key a topology change moved onto it (pool.h, RingChange), the copy is settled first.
// A miss is filled from the backup (placeholder and C, meta_value.h); a copy that predates the key's move is
// replaced by the backup's value (ms C<its CAS>) or, without one, deleted (md C<its CAS>). Then `then` runs; the
// request follows on the same member connection, after the settling write. Nothing to do: `then` at once.
void SettleKey(const PoolPtr& pool, Member* primary, uint32_t hash, std::string key_token, bool base64,
               Metrics* metrics, std::function<void()> then);
// Whether SettleKey has something to do for this key (else the caller need not wait for it).
bool SettleNeeded(const PoolPtr& pool, Member* primary, uint32_t hash);

// Copies the keys waiting in the repair queues of `pool`'s backup members from their primaries, as far as each
// backup's mirror window allows (called by the proxy every tick).
void DrainRepairs(const PoolPtr& pool, Metrics* metrics, const Tunables* tunables);

}  // namespace memha
