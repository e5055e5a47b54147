// The refill manager: which members it decides to refill (fake stats), and, against real memcached processes,
// that it runs them, marks them for the sidecars, and abandons/restarts a run when the pools change under it.
#include "controller/refill/manager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "common/ring/ketama.h"
#include "tests/controller/refill/memcached_process.h"

namespace memha::refill {
namespace {

using testing::MemcachedProcess;

MemberSpec Member(std::string name, std::string address, MemberState state = MemberState::kUp) {
  MemberSpec m;
  m.name = std::move(name);
  m.address = std::move(address);
  m.state = state;
  return m;
}

template <typename F>
bool WaitFor(F done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// Detection with canned stats: nothing is started, so targets stay pending and nothing is copied.
class DetectionTest : public ::testing::Test {
 protected:
  DetectionTest()
      : manager_(
            ManagerOptions{},
            [this](const std::string& address, std::chrono::milliseconds) -> Result<MemberStats> {
              auto it = stats_.find(address);
              if (it == stats_.end()) return Status::Unavailable("down");
              return it->second;
            },
            nullptr,
            [this](const std::string& address, std::chrono::milliseconds) -> Result<uint64_t> {
              fenced_.push_back(address);
              if (stats_.count(address) == 0) return Status::Unavailable("down");
              return uint64_t{1234};
            }) {
    pair_.pool = "shop/cache-a";
    pair_.backup_service = "shop/cache-b";
    pair_.primary = {Member("cache-a-0", "10.0.0.1:11211"), Member("cache-a-1", "10.0.0.2:11211")};
    pair_.backup = {Member("cache-b-0", "10.0.1.1:11211")};
    stats_["10.0.0.1:11211"] = {1000, 5000};
    stats_["10.0.0.2:11211"] = {1000, 5000};
    stats_["10.0.1.1:11211"] = {1000, 10000};
    manager_.UpdatePools({pair_});
    manager_.SetLeading(true);
  }

  std::map<std::string, TargetState> States() {
    std::map<std::string, TargetState> out;
    for (const auto& s : manager_.Status()) out[s.role + "/" + s.member] = s.state;
    return out;
  }
  std::string Reason(const std::string& member) {
    for (const auto& s : manager_.Status()) {
      if (s.member == member) return s.reason;
    }
    return "";
  }

  std::map<std::string, MemberStats> stats_;
  std::vector<std::string> fenced_;
  PoolPair pair_;
  RefillManager manager_;
};

TEST_F(DetectionTest, WarmMembersAreLeftAlone) {
  manager_.DetectOnce();
  manager_.DetectOnce();
  EXPECT_TRUE(manager_.Status().empty());
  EXPECT_TRUE(manager_.Marks().empty());
}

TEST_F(DetectionTest, AnEmptyMemberOnFirstSightIsRefilled) {
  stats_["10.0.0.2:11211"] = {30, 12};  // under a tenth of 10000/2
  manager_.DetectOnce();
  EXPECT_EQ(States(), (std::map<std::string, TargetState>{{"primary/cache-a-1", TargetState::kPending}}));
  EXPECT_EQ(Reason("cache-a-1"), "empty");
  EXPECT_EQ(manager_.Marks()["shop/cache-a"]["cache-a-1"], MemberRefill::kRunning);
}

TEST_F(DetectionTest, ARestartIsNoticedByItsUptime) {
  manager_.DetectOnce();
  stats_["10.0.1.1:11211"] = {5, 9000};  // the backup restarted (and already got mirrored writes)
  manager_.DetectOnce();
  EXPECT_EQ(States(), (std::map<std::string, TargetState>{{"backup/cache-b-0", TargetState::kPending}}));
  EXPECT_EQ(Reason("cache-b-0"), "restarted");
  EXPECT_EQ(manager_.Marks()["shop/cache-b"]["cache-b-0"], MemberRefill::kRunning);
}

TEST_F(DetectionTest, ARestartIsNoticedEvenWhenAProbeMissedIt) {
  manager_.DetectOnce();
  stats_.erase("10.0.0.1:11211");  // restarting: not answering
  manager_.DetectOnce();
  EXPECT_TRUE(manager_.Status().empty());
  stats_["10.0.0.1:11211"] = {3, 4000};  // back, and live writes already gave it most of its share
  manager_.DetectOnce();
  EXPECT_EQ(Reason("cache-a-0"), "restarted");
}

TEST_F(DetectionTest, ANewAddressIsANewPod) {
  manager_.DetectOnce();
  pair_.primary[0].address = "10.0.0.9:11211";
  stats_["10.0.0.9:11211"] = {2000, 5000};
  manager_.UpdatePools({pair_});
  manager_.DetectOnce();
  EXPECT_EQ(Reason("cache-a-0"), "new address");
}

TEST_F(DetectionTest, NothingToCopyFromAnEmptyPeerPool) {
  stats_["10.0.1.1:11211"] = {1000, 0};
  stats_["10.0.0.1:11211"] = {1, 0};
  manager_.DetectOnce();
  EXPECT_EQ(States().count("primary/cache-a-0"), 0u);  // the backup has nothing to give
  EXPECT_EQ(States().count("backup/cache-b-0"), 1u);   // the backup, empty, has a primary with items
}

TEST_F(DetectionTest, AFollowerDoesNothingAndForgets) {
  stats_["10.0.0.2:11211"] = {30, 0};
  manager_.DetectOnce();
  ASSERT_EQ(manager_.Status().size(), 1u);
  manager_.SetLeading(false);
  EXPECT_TRUE(manager_.Status().empty());
  manager_.DetectOnce();
  EXPECT_TRUE(manager_.Status().empty());
}

TEST_F(DetectionTest, ATargetThatLeavesIsDropped) {
  stats_["10.0.0.2:11211"] = {30, 0};
  manager_.DetectOnce();
  ASSERT_EQ(manager_.Status().size(), 1u);
  pair_.primary[1].state = MemberState::kDown;
  manager_.UpdatePools({pair_});
  EXPECT_TRUE(manager_.Status().empty());
  EXPECT_TRUE(manager_.Marks().empty());
}

TEST_F(DetectionTest, AMemberThatJoinsTheRingGetsAFenceAndAHandover) {
  pair_.primary.push_back(Member("cache-a-2", "10.0.0.3:11211"));
  stats_["10.0.0.3:11211"] = {10, 0};
  manager_.UpdatePools({pair_});
  // Only the newcomer gains keys (ketama): one fence, one handover; the others are untouched.
  EXPECT_EQ(fenced_, std::vector<std::string>{"10.0.0.3:11211"});
  EXPECT_EQ(States(), (std::map<std::string, TargetState>{{"primary/cache-a-2", TargetState::kPending}}));
  EXPECT_EQ(Reason("cache-a-2"), "ring change");
  EXPECT_EQ(manager_.Handovers(), 1u);
  EXPECT_EQ(manager_.Marks()["shop/cache-a"]["cache-a-2"], MemberRefill::kRunning);
  // The same pools again: no new change.
  manager_.UpdatePools({pair_});
  EXPECT_EQ(manager_.Handovers(), 1u);
  EXPECT_EQ(fenced_.size(), 1u);
}

TEST_F(DetectionTest, AMemberThatLeavesHandsItsKeysToTheOthers) {
  pair_.primary.push_back(Member("cache-a-2", "10.0.0.3:11211"));
  stats_["10.0.0.3:11211"] = {1000, 3000};
  manager_.SetLeading(false);
  manager_.UpdatePools({pair_});  // a follower sees the change: it remembers the ring, takes no fence
  EXPECT_TRUE(fenced_.empty());
  manager_.SetLeading(true);
  EXPECT_TRUE(manager_.Status().empty());
  pair_.primary.erase(pair_.primary.begin() + 1);  // cache-a-1 leaves
  manager_.UpdatePools({pair_});
  EXPECT_EQ(fenced_, (std::vector<std::string>{"10.0.0.1:11211", "10.0.0.3:11211"}));
  EXPECT_EQ(States(), (std::map<std::string, TargetState>{{"primary/cache-a-0", TargetState::kPending},
                                                          {"primary/cache-a-2", TargetState::kPending}}));
}

TEST_F(DetectionTest, ABackupRingChangeHandsOverFromThePrimaries) {
  pair_.backup.push_back(Member("cache-b-1", "10.0.1.2:11211"));
  stats_["10.0.1.2:11211"] = {10, 0};
  manager_.UpdatePools({pair_});
  EXPECT_EQ(States(), (std::map<std::string, TargetState>{{"backup/cache-b-1", TargetState::kPending}}));
  EXPECT_EQ(manager_.Marks()["shop/cache-b"]["cache-b-1"], MemberRefill::kRunning);
}

TEST_F(DetectionTest, AMemberThatGivesNoFenceStillGetsItsMissingKeys) {
  pair_.primary.push_back(Member("cache-a-2", "10.0.0.3:11211"));  // no stats: the fence fails
  manager_.UpdatePools({pair_});
  EXPECT_EQ(fenced_, std::vector<std::string>{"10.0.0.3:11211"});
  EXPECT_EQ(States(), (std::map<std::string, TargetState>{{"primary/cache-a-2", TargetState::kPending}}));
}

// Real memcached: an empty primary pool is refilled from the backup by the manager's own threads.
class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) primaries_.push_back(std::make_unique<MemcachedProcess>());
    auto c = backup_.NewClient();
    for (int i = 0; i < 3000; ++i) ASSERT_TRUE(c.Set("k" + std::to_string(i), "value-" + std::to_string(i)));
    pair_.pool = "shop/cache-a";
    pair_.backup_service = "shop/cache-b";
    pair_.primary = {Member("cache-a-0", primaries_[0]->address()), Member("cache-a-1", primaries_[1]->address())};
    pair_.backup = {Member("cache-b-0", backup_.address())};
  }

  size_t Holding(MemcachedProcess& m, const std::vector<std::string>& ring, uint32_t index, size_t* wrong) {
    auto c = m.NewClient();
    KetamaRing r(ring);
    size_t held = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string key = "k" + std::to_string(i);
      bool there = c.Get(key).code == ReplyCode::kValue;
      if (r.MemberFor(key) == index) {
        held += there;
      } else if (there && wrong != nullptr) {
        ++*wrong;
      }
    }
    return held;
  }

  MemcachedProcess backup_;
  std::vector<std::unique_ptr<MemcachedProcess>> primaries_;
  PoolPair pair_;
};

TEST_F(ManagerTest, RefillsBothEmptyPrimariesAndMarksThemDone) {
  ManagerOptions options;
  options.probe_interval = std::chrono::milliseconds(200);
  options.limits.verify_delay = std::chrono::milliseconds(50);
  std::vector<std::string> events;
  std::mutex events_mu;
  RefillManager manager(options, ProbeStats,
                        [&](const std::string& service, bool, const std::string& reason, const std::string&) {
                          std::lock_guard lock(events_mu);
                          events.push_back(service + " " + reason);
                        });
  std::atomic<int> pokes{0};
  manager.SetOnMarksChanged([&] { ++pokes; });
  manager.UpdatePools({pair_});
  manager.SetLeading(true);
  manager.Start();
  ASSERT_TRUE(WaitFor([&] { return manager.Targets(TargetState::kDone) == 2; })) << manager.Targets(TargetState::kDone);
  manager.Stop();
  auto marks = manager.Marks();
  EXPECT_EQ(marks["shop/cache-a"]["cache-a-0"], MemberRefill::kDone);
  EXPECT_EQ(marks["shop/cache-a"]["cache-a-1"], MemberRefill::kDone);
  EXPECT_EQ(marks.count("shop/cache-b"), 0u);  // the backup was never empty
  EXPECT_GE(pokes.load(), 2);
  std::vector<std::string> ring = {"cache-a-0", "cache-a-1"};
  size_t wrong = 0;
  size_t held = Holding(*primaries_[0], ring, 0, &wrong) + Holding(*primaries_[1], ring, 1, &wrong);
  EXPECT_EQ(held, 3000u);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(manager.Runs(RefillOutcome::kDone), 2u);
  std::lock_guard lock(events_mu);
  EXPECT_EQ(std::count(events.begin(), events.end(), "shop/cache-a RefillStarted"), 2);
  EXPECT_EQ(std::count(events.begin(), events.end(), "shop/cache-a RefillCompleted"), 2);
}

// A rolling restart: cache-a-1 was refilled ("done"), then its pod is recreated at a new address, empty. The old
// pod's "done" must leave the marks at once (else the sidecars take the new, empty member for warm), and the new
// pod is refilled as a new address.
TEST_F(ManagerTest, ADoneRefillOfThePreviousPodDoesNotMarkTheNewOne) {
  ManagerOptions options;
  options.probe_interval = std::chrono::milliseconds(200);
  options.limits.verify_delay = std::chrono::milliseconds(50);
  RefillManager manager(options);
  manager.UpdatePools({pair_});
  manager.SetLeading(true);
  manager.Start();
  ASSERT_TRUE(WaitFor([&] { return manager.Targets(TargetState::kDone) == 2; }));
  EXPECT_EQ(manager.Marks()["shop/cache-a"]["cache-a-1"], MemberRefill::kDone);
  pair_.primary[1].address = primaries_[2]->address();  // the recreated pod, empty
  manager.UpdatePools({pair_});
  auto marks = manager.Marks();
  EXPECT_NE(marks["shop/cache-a"]["cache-a-1"], MemberRefill::kDone) << "the old pod's mark on the new pod";
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& s : manager.Status()) {
      if (s.member == "cache-a-1" && s.reason == "new address" && s.state == TargetState::kDone) return true;
    }
    return false;
  }));
  manager.Stop();
  std::vector<std::string> ring = {"cache-a-0", "cache-a-1"};
  size_t owned = 0;
  for (int i = 0; i < 3000; ++i) owned += KetamaRing(ring).MemberFor("k" + std::to_string(i)) == 1;
  EXPECT_EQ(Holding(*primaries_[2], ring, 1, nullptr), owned);
}

TEST_F(ManagerTest, ARingChangeAbandonsTheRunAndStartsOver) {
  ManagerOptions options;
  options.probe_interval = std::chrono::seconds(60);  // one detection, at start
  options.limits.keys_per_second = 400;               // ~1500 owned keys: ~4 s per run
  options.limits.verify_delay = std::chrono::milliseconds(50);
  options.handover = false;  // cache-a-1's own handover is HandoverTest's
  RefillManager manager(options);
  pair_.primary.pop_back();  // one primary, cache-a-0: it owns everything
  manager.UpdatePools({pair_});
  manager.SetLeading(true);
  manager.Start();
  ASSERT_TRUE(WaitFor([&] { return manager.RunningProgress().second >= 200; }));
  // Scale out: cache-a-1 joins the ring. cache-a-0's share shrinks: the run is abandoned and started over.
  pair_.primary.push_back(Member("cache-a-1", primaries_[1]->address()));
  auto before = std::chrono::steady_clock::now();
  manager.UpdatePools({pair_});
  ASSERT_TRUE(WaitFor([&] { return manager.Runs(RefillOutcome::kAbandoned) == 1; }));
  double abandon_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
  EXPECT_LT(abandon_seconds, 2.0);  // noticed within a 50 ms sleep slice or one batch's I/O
  ASSERT_TRUE(WaitFor([&] { return manager.Targets(TargetState::kDone) == 1; }, std::chrono::seconds(30)));
  manager.Stop();
  auto status = manager.Status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].member, "cache-a-0");
  // Everything cache-a-0 owns on the two-member ring is there.
  std::vector<std::string> ring = {"cache-a-0", "cache-a-1"};
  size_t owned = 0;
  for (int i = 0; i < 3000; ++i) owned += KetamaRing(ring).MemberFor("k" + std::to_string(i)) == 0;
  EXPECT_EQ(Holding(*primaries_[0], ring, 0, nullptr), owned);
  EXPECT_EQ(status[0].owned, owned);
}

// 2 -> 3 -> 2 primaries under the manager, with the writes a sidecar makes (primary, then backup) on the ring of
// the time. After the scale-out cache-a-2 holds its share; meanwhile its keys are rewritten or deleted; after the
// scale-in cache-a-0 and cache-a-1 get those keys back and still hold their copies from before the scale-out. The
// handovers leave every primary holding, for each key it owns, the backup's value or nothing.
TEST_F(ManagerTest, ScaleOutAndBackInLeavesNoCopyOlderThanTheBackup) {
  ManagerOptions options;
  options.probe_interval = std::chrono::seconds(60);
  options.handover_delay = std::chrono::milliseconds(50);
  options.limits.verify_delay = std::chrono::milliseconds(50);
  RefillManager manager(options);
  std::vector<std::unique_ptr<testing::Client>> clients;
  auto write = [&](const std::vector<std::string>& ring, int i, const std::string& value) {
    std::string key = "k" + std::to_string(i);
    auto owner = primaries_[KetamaRing(ring).MemberFor(key)]->NewClient();
    auto backup = backup_.NewClient();
    if (value.empty()) {
      owner.Delete(key);
      backup.Delete(key);
    } else {
      ASSERT_TRUE(owner.Set(key, value));
      ASSERT_TRUE(backup.Set(key, value));
    }
  };
  // Era 1: two warm primaries (what the sidecars wrote), the backup holds the same.
  const std::vector<std::string> two = {"cache-a-0", "cache-a-1"};
  const std::vector<std::string> three = {"cache-a-0", "cache-a-1", "cache-a-2"};
  {
    auto c0 = primaries_[0]->NewClient();
    auto c1 = primaries_[1]->NewClient();
    for (int i = 0; i < 3000; ++i) {
      std::string key = "k" + std::to_string(i);
      auto& c = KetamaRing(two).MemberFor(key) == 0 ? c0 : c1;
      ASSERT_TRUE(c.Set(key, "value-" + std::to_string(i)));
    }
  }
  manager.UpdatePools({pair_});
  manager.SetLeading(true);
  manager.Start();
  // Scale out: cache-a-2 joins, empty; its handover copies its share.
  pair_.primary.push_back(Member("cache-a-2", primaries_[2]->address()));
  manager.UpdatePools({pair_});
  ASSERT_TRUE(WaitFor([&] { return manager.Targets(TargetState::kDone) == 1; }, std::chrono::seconds(30)));
  size_t wrong = 0;
  size_t share = 0;
  for (int i = 0; i < 3000; ++i) share += KetamaRing(three).MemberFor("k" + std::to_string(i)) == 2;
  EXPECT_EQ(Holding(*primaries_[2], three, 2, &wrong), share);
  EXPECT_EQ(wrong, 0u);
  // Era 2: cache-a-2's keys are rewritten (two in three) or deleted (one in three), on the ring of the time.
  int changed = 0;
  for (int i = 0; i < 3000; ++i) {
    if (KetamaRing(three).MemberFor("k" + std::to_string(i)) != 2) continue;
    write(three, i, i % 3 == 0 ? "" : "era2-" + std::to_string(i));
    ++changed;
  }
  // Scale in: cache-a-2 leaves. cache-a-0/1 get its keys back, holding era-1 copies of every one of them.
  pair_.primary.pop_back();
  manager.UpdatePools({pair_});
  EXPECT_EQ(manager.Handovers(), 3u);  // cache-a-2, then cache-a-0 and cache-a-1
  ASSERT_TRUE(WaitFor([&] { return manager.Targets(TargetState::kDone) == 2 &&
                                   manager.Targets(TargetState::kPending) == 0 &&
                                   manager.Targets(TargetState::kRunning) == 0; },
                      std::chrono::seconds(30)));
  manager.Stop();
  size_t stale = 0, resurrected = 0, checked = 0;
  auto backup = backup_.NewClient();
  for (int owner = 0; owner < 2; ++owner) {
    auto c = primaries_[owner]->NewClient();
    for (int i = 0; i < 3000; ++i) {
      std::string key = "k" + std::to_string(i);
      if (KetamaRing(two).MemberFor(key) != static_cast<uint32_t>(owner)) continue;
      auto ours = c.Get(key);
      auto theirs = backup.Get(key);
      ++checked;
      if (ours.code == ReplyCode::kValue && theirs.code == ReplyCode::kMiss) ++resurrected;
      if (ours.code == ReplyCode::kValue && theirs.code == ReplyCode::kValue && ours.value != theirs.value) ++stale;
      if (theirs.code == ReplyCode::kValue) {
        EXPECT_EQ(ours.code, ReplyCode::kValue) << key << ": the handover copies what the backup holds";
      }
    }
  }
  EXPECT_EQ(checked, 3000u);
  EXPECT_GT(changed, 700);
  EXPECT_EQ(stale, 0u);
  EXPECT_EQ(resurrected, 0u);
  EXPECT_EQ(manager.counters().dropped.load(), static_cast<uint64_t>(changed));
}

}  // namespace
}  // namespace memha::refill
