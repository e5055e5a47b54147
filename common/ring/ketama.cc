#include "common/ring/ketama.h"

#include <algorithm>
#include <cmath>

#include "common/ring/md5.h"

namespace memha {
namespace {

constexpr uint32_t kPointsPerServer = 160;  // twemproxy KETAMA_POINTS_PER_SERVER
constexpr uint32_t kPointsPerHash = 4;      // one md5 digest yields four points

uint32_t DigestWord(const std::array<uint8_t, 16>& d, int alignment) {
  return uint32_t(d[3 + alignment * 4]) << 24 | uint32_t(d[2 + alignment * 4]) << 16 |
         uint32_t(d[1 + alignment * 4]) << 8 | uint32_t(d[0 + alignment * 4]);
}

}  // namespace

uint32_t KetamaRing::HashKey(std::string_view key) { return DigestWord(Md5(key), 0); }

KetamaRing::KetamaRing(const std::vector<std::string>& names) : member_count_(names.size()) {
  const size_t n = names.size();
  // twemproxy: pct = weight / total_weight; points = floor(pct * 160 / 4 * n + 1e-10) * 4. Equal weights -> 160.
  const float pct = n ? 1.0f / static_cast<float>(n) : 0.0f;
  const auto per_server = static_cast<uint32_t>(
      std::floor(static_cast<float>(pct * kPointsPerServer / 4 * static_cast<float>(n) + 0.0000000001)) * 4);
  points_.reserve(n * per_server);
  std::string host;
  for (uint32_t member = 0; member < n; ++member) {
    for (uint32_t index = 0; index < per_server / kPointsPerHash; ++index) {
      host = names[member] + "-" + std::to_string(index);
      auto digest = Md5(host);
      for (int x = 0; x < static_cast<int>(kPointsPerHash); ++x) points_.push_back({DigestWord(digest, x), member});
    }
  }
  std::stable_sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) { return a.value < b.value; });
}

uint32_t KetamaRing::MemberForHash(uint32_t hash) const {
  if (points_.empty()) return 0;
  auto it = std::lower_bound(points_.begin(), points_.end(), hash,
                             [](const Point& p, uint32_t h) { return p.value < h; });
  if (it == points_.end()) it = points_.begin();
  return it->member;
}

}  // namespace memha
