#pragma once
// An immutable routing snapshot of one pool: rings over member names plus the members they map to.
// A new topology builds a new Pool; requests keep the snapshot they started with.
#include <memory>
#include <string>
#include <vector>

#include "common/topology.h"
#include "sidecar/backend/member.h"
#include "sidecar/ring/ketama.h"

namespace memha {

struct Pool {
  Pool(PoolSpec spec_in, std::vector<std::shared_ptr<Member>> primary_in, std::vector<std::shared_ptr<Member>> backup_in);

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
};

using PoolPtr = std::shared_ptr<const Pool>;

}  // namespace memha
