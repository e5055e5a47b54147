#pragma once
// Ketama continuum over member *names*, point-for-point compatible with twemproxy's `distribution: ketama`
// with `hash: md5` (and libketama) for the same names and equal weights. Immutable after construction:
// failover never reshapes a ring; a new topology builds a new one and it is swapped whole.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace memha {

class KetamaRing {
 public:
  explicit KetamaRing(const std::vector<std::string>& names);

  // Index into the names given at construction.
  uint32_t MemberFor(std::string_view key) const { return MemberForHash(HashKey(key)); }
  uint32_t MemberForHash(uint32_t hash) const;
  size_t size() const { return member_count_; }
  static uint32_t HashKey(std::string_view key);

 private:
  struct Point {
    uint32_t value;
    uint32_t member;
  };
  std::vector<Point> points_;
  size_t member_count_;
};

using RingPtr = std::shared_ptr<const KetamaRing>;

}  // namespace memha
