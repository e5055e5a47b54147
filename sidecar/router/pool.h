#pragma once
// An immutable routing snapshot of one pool: rings over member names plus the members they map to.
// A new topology builds a new Pool; requests keep the snapshot they started with.
#include <memory>
#include <unordered_map>
#include <string>
#include <vector>

#include "common/topology.h"
#include "sidecar/backend/member.h"
#include "common/ring/ketama.h"

namespace memha {

// A change of the primary ring (a member added or removed) moves keys between members. A member that gains a key
// may still hold a copy of it from an earlier era (it owned the key before: 2 -> 3 -> 2 members), older than the
// writes that went to the key's other owner meanwhile. Such a copy is recognised by its CAS: memcached's CAS is one
// counter per instance, so an item stored before the change has a CAS at most the member's counter at the change,
// its fence (read by storing a fence item right after the change; until it is known every copy is suspect).
// A read of a moved key checks a suspect copy against the backup (docs/ARCHITECTURE.md, "Scaling").
struct RingChange {
  // The ring is copied from the pool it replaces, not rebuilt: a ring of thousands of members costs an MD5 per
  // 4 points to build, on the event loop.
  RingChange(const KetamaRing& ring_before, std::vector<std::string> names_before)
      : before(ring_before), before_names(std::move(names_before)) {}
  KetamaRing before;                     // the primary ring before the change
  std::vector<std::string> before_names;
  std::shared_ptr<std::unordered_map<std::string, uint64_t>> fences =
      std::make_shared<std::unordered_map<std::string, uint64_t>>();  // member name -> CAS fence
};
using RingChangePtr = std::shared_ptr<const RingChange>;
constexpr size_t kMaxRingChanges = 8;  // the history a sidecar keeps (docs/ARCHITECTURE.md, "Scaling")

struct Pool {
  Pool(PoolSpec spec_in, std::vector<std::shared_ptr<Member>> primary_in, std::vector<std::shared_ptr<Member>> backup_in,
       std::vector<RingChangePtr> changes = {}, std::shared_ptr<PoolMetrics> metrics_in = nullptr);

  PoolSpec spec;
  KetamaRing primary_ring;
  KetamaRing backup_ring;
  std::vector<std::shared_ptr<Member>> primary;
  std::vector<std::shared_ptr<Member>> backup;

  Member* PrimaryFor(uint32_t hash) const { return primary[primary_ring.MemberForHash(hash)].get(); }
  Member* BackupFor(uint32_t hash) const {
    return backup.empty() ? nullptr : backup[backup_ring.MemberForHash(hash)].get();
  }
  // The key's ring hash, or 0 when nothing depends on it (one member per ring, one connection per member):
  // MD5 is the largest single cost of routing a key.
  uint32_t Hash(std::string_view key) const { return needs_hash ? KetamaRing::HashKey(key) : 0; }
  bool needs_hash = true;
  bool mirrors() const { return !backup.empty() && spec.write_policy != WritePolicy::kPrimaryOnly; }
  // A request of this pool served by its backup because the primary could not.
  void CountFailover(OpStatus why) const {
    if (metrics) metrics->Failover(why);
  }
  std::shared_ptr<PoolMetrics> metrics;  // series labelled with this pool

  std::vector<RingChangePtr> primary_changes;  // newest first
  // Whether a recorded change moved the key (`hash`) onto `owner`, its primary now.
  bool Moved(uint32_t hash, const std::string& owner) const { return !primary_changes.empty() && MovedTo(hash, owner, 0); }
  // Whether `owner`'s copy of a moved key, with CAS `cas`, may predate a change that moved the key onto it.
  bool SuspectCopy(uint32_t hash, const std::string& owner, uint64_t cas) const {
    return !primary_changes.empty() && MovedTo(hash, owner, cas == 0 ? 1 : cas);
  }

 private:
  // cas 0: any change that moved it; otherwise only a change whose fence on `owner` is unknown or >= cas.
  bool MovedTo(uint32_t hash, const std::string& owner, uint64_t cas) const;
  std::vector<std::string> primary_names_;
};

using PoolPtr = std::shared_ptr<const Pool>;

}  // namespace memha
