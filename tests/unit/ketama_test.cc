// Ketama ring over member names: key hash, point placement and lookup as twemproxy does it (checked against an
// independent implementation of the twemproxy algorithm), determinism, spread, and consistency when members come
// and go. Golden vectors against a real nutcracker live in the integration tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/ring/ketama.h"
#include "common/ring/md5.h"

namespace memha {
namespace {

std::vector<std::string> Keys(size_t n) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < n; ++i) keys.push_back("key:" + std::to_string(i) + ":" + std::to_string(i * 7919));
  return keys;
}

// twemproxy's ketama_update / ketama_dispatch, written out from its source for equal weights.
struct ReferenceRing {
  struct Point {
    uint32_t value;
    std::string name;
  };
  std::vector<Point> points;

  static uint32_t Word(const std::array<uint8_t, 16>& d, int x) {
    return uint32_t(d[3 + x * 4]) << 24 | uint32_t(d[2 + x * 4]) << 16 | uint32_t(d[1 + x * 4]) << 8 | d[x * 4];
  }

  explicit ReferenceRing(const std::vector<std::string>& names) {
    const float nserver = static_cast<float>(names.size());
    const float pct = 1.0f / nserver;
    const auto per_server =
        static_cast<uint32_t>(std::floor(static_cast<float>(pct * 160 / 4 * nserver + 0.0000000001)) * 4);
    for (const std::string& name : names) {
      for (uint32_t i = 0; i < per_server / 4; ++i) {
        auto d = Md5(name + "-" + std::to_string(i));
        for (int x = 0; x < 4; ++x) points.push_back({Word(d, x), name});
      }
    }
    std::stable_sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.value < b.value; });
  }

  const std::string& NameForHash(uint32_t hash) const {
    for (const Point& p : points) {
      if (p.value >= hash) return p.name;
    }
    return points.front().name;
  }
};

std::string NameFor(const KetamaRing& ring, const std::vector<std::string>& names, const std::string& key) {
  uint32_t m = ring.MemberFor(key);
  EXPECT_LT(m, names.size());
  return m < names.size() ? names[m] : "";
}

TEST(Ketama, KeyHashIsLittleEndianFirstMd5Word) {
  // md5("") = d41d8cd9..., md5("a") = 0cc175b9...
  EXPECT_EQ(KetamaRing::HashKey(""), 0xd98c1dd4u);
  EXPECT_EQ(KetamaRing::HashKey("a"), 0xb975c10cu);
}

TEST(Ketama, MatchesTwemproxyAlgorithm) {
  for (const std::vector<std::string>& names :
       {std::vector<std::string>{"cache-a-0", "cache-a-1", "cache-a-2"},
        std::vector<std::string>{"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211", "10.0.0.4:11211",
                                 "10.0.0.5:11211"},
        std::vector<std::string>{"solo"}}) {
    KetamaRing ring(names);
    ReferenceRing ref(names);
    ASSERT_EQ(ref.points.size(), names.size() * 160);
    EXPECT_EQ(ring.size(), names.size());
    for (const std::string& key : Keys(2000)) {
      ASSERT_EQ(NameFor(ring, names, key), ref.NameForHash(KetamaRing::HashKey(key))) << key;
    }
    // Boundaries: a hash equal to a point goes to that point, one past it to the next; past the last wraps.
    for (size_t i = 0; i < ref.points.size(); i += 7) {
      uint32_t v = ref.points[i].value;
      EXPECT_EQ(names[ring.MemberForHash(v)], ref.points[i].name);
      if (v != UINT32_MAX) {
        EXPECT_EQ(names[ring.MemberForHash(v + 1)], ref.NameForHash(v + 1));
      }
    }
    EXPECT_EQ(names[ring.MemberForHash(0)], ref.points.front().name);
    EXPECT_EQ(names[ring.MemberForHash(UINT32_MAX)], ref.NameForHash(UINT32_MAX));
    EXPECT_EQ(names[ring.MemberForHash(ref.points.back().value + 1u)], ref.points.front().name);
  }
}

TEST(Ketama, Deterministic) {
  const std::vector<std::string> names = {"a", "b", "c", "d"};
  KetamaRing one(names), two(names);
  for (const std::string& key : Keys(5000)) EXPECT_EQ(one.MemberFor(key), two.MemberFor(key));
}

TEST(Ketama, PlacementDependsOnNamesNotTheirOrder) {
  const std::vector<std::string> names = {"pod-0", "pod-1", "pod-2", "pod-3"};
  const std::vector<std::string> shuffled = {"pod-2", "pod-0", "pod-3", "pod-1"};
  KetamaRing a(names), b(shuffled);
  for (const std::string& key : Keys(5000)) EXPECT_EQ(NameFor(a, names, key), NameFor(b, shuffled, key));
}

TEST(Ketama, SpreadsKeysRoughlyEvenly) {
  const std::vector<std::string> names = {"cache-0", "cache-1", "cache-2"};
  KetamaRing ring(names);
  std::vector<int> count(3, 0);
  for (const std::string& key : Keys(10000)) ++count[ring.MemberFor(key)];
  for (int c : count) {
    EXPECT_GE(c, 2000);
    EXPECT_LE(c, 4700);
  }
}

TEST(Ketama, RemovingAMemberMovesOnlyItsKeys) {
  const std::vector<std::string> before = {"m0", "m1", "m2", "m3"};
  const std::vector<std::string> after = {"m0", "m1", "m3"};
  KetamaRing old_ring(before), new_ring(after);
  std::map<std::string, int> moved_to;
  int on_removed = 0;
  for (const std::string& key : Keys(10000)) {
    std::string was = NameFor(old_ring, before, key);
    std::string now = NameFor(new_ring, after, key);
    if (was == "m2") {
      ++on_removed;
      ++moved_to[now];
    } else {
      ASSERT_EQ(now, was) << key;
    }
  }
  EXPECT_GT(on_removed, 1000);
  EXPECT_EQ(moved_to.size(), 3u) << "the removed member's keys should spread over all survivors";
}

TEST(Ketama, AddingAMemberTakesKeysOnlyForItself) {
  const std::vector<std::string> before = {"m0", "m1", "m2"};
  const std::vector<std::string> after = {"m0", "m1", "m2", "m3"};
  KetamaRing old_ring(before), new_ring(after);
  int moved = 0;
  for (const std::string& key : Keys(10000)) {
    std::string was = NameFor(old_ring, before, key);
    std::string now = NameFor(new_ring, after, key);
    if (now != was) {
      ASSERT_EQ(now, "m3") << key;
      ++moved;
    }
  }
  EXPECT_GT(moved, 1500);
  EXPECT_LT(moved, 4000);
}

TEST(Ketama, SingleAndEmptyRings) {
  KetamaRing solo({"only"});
  EXPECT_EQ(solo.size(), 1u);
  for (const std::string& key : Keys(100)) EXPECT_EQ(solo.MemberFor(key), 0u);
  KetamaRing empty({});
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.MemberFor("anything"), 0u);
}

}  // namespace
}  // namespace memha

// Golden vectors: pinned placements for named members; a change here breaks key placement for every user.
TEST(KetamaGolden, MatchesPinnedPlacements) {
  const std::vector<std::string> names = {"cache-a-0", "cache-a-1", "cache-a-2", "cache-a-3"};
  memha::KetamaRing ring(names);
  std::ifstream in(std::string(MEMHA_UNIT_GOLDEN_DIR) + "/ketama_4_members.txt");
  ASSERT_TRUE(in.good());
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.find(' ');
    std::string key = line.substr(0, space), want = line.substr(space + 1);
    EXPECT_EQ(names[ring.MemberFor(key)], want) << key;
    ++checked;
  }
  EXPECT_EQ(checked, 500);
}
