// Leader election against an in-memory Lease API, on a FakeClock: acquire, renew, blocked by a live holder,
// expiry on locally observed time, 409 retry, release, epoch growth, step-down on renew failures.
#include "controller/leader/lease.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/controller/leader/fake_lease_api.h"

namespace memha::leader {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
constexpr const char* kKey = "memha-system/memha-controller";

struct Candidate {
  Candidate(kube::KubeApi& api, kube::Clock& clock, const std::string& id)
      : elector(api, Options(id),
                LeaderCallbacks{.on_started_leading = [this](uint64_t epoch) { started.push_back(epoch); },
                                .on_stopped_leading = [this] { ++stopped; },
                                .on_new_leader = nullptr},
                clock) {}
  static LeaseOptions Options(const std::string& id) {
    LeaseOptions o;
    o.ns = "memha-system";
    o.identity = id;
    return o;
  }
  LeaderElector elector;
  std::vector<uint64_t> started;
  int stopped = 0;
};

class LeaseTest : public ::testing::Test {
 protected:
  nlohmann::json Spec() { return api_.Lease(kKey)["spec"]; }
  testing::FakeLeaseApi api_;
  kube::FakeClock clock_;
};

TEST(LeaseOptions, DefaultsAndValidation) {
  LeaseOptions o;
  EXPECT_EQ(o.lease_duration, seconds(15));
  EXPECT_EQ(o.renew_deadline, seconds(10));
  EXPECT_EQ(o.retry_period, seconds(2));
  EXPECT_FALSE(o.Validate().ok());  // identity missing
  o.identity = "a";
  EXPECT_TRUE(o.Validate().ok());
  o.renew_deadline = seconds(15);
  EXPECT_FALSE(o.Validate().ok());
}

TEST_F(LeaseTest, CreatesTheLeaseWhenAbsentAndLeads) {
  Candidate a(api_, clock_, "a");
  a.elector.Tick();
  EXPECT_TRUE(a.elector.IsLeader());
  EXPECT_EQ(a.started, std::vector<uint64_t>{1});
  EXPECT_EQ(a.elector.Epoch(), 1u);
  EXPECT_EQ(Spec()["holderIdentity"], "a");
  EXPECT_EQ(Spec()["leaseDurationSeconds"], 15);
  EXPECT_EQ(Spec()["leaseTransitions"], 1);
  EXPECT_EQ(api_.Count("POST"), 1);
}

TEST_F(LeaseTest, RenewsWithoutNewTransitions) {
  Candidate a(api_, clock_, "a");
  auto wall = std::chrono::system_clock::now();
  a.elector.SetWallClock([&] { return wall; });
  a.elector.Tick();
  std::string first_renew = Spec()["renewTime"];
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(2));
    wall += seconds(2);
    a.elector.Tick();
  }
  EXPECT_TRUE(a.elector.IsLeader());
  EXPECT_NE(Spec()["renewTime"], first_renew);
  EXPECT_EQ(Spec()["acquireTime"], first_renew);
  EXPECT_EQ(Spec()["leaseTransitions"], 1);
  EXPECT_EQ(a.started.size(), 1u);
  EXPECT_EQ(a.stopped, 0);
  EXPECT_EQ(api_.Count("PUT"), 5);
}

TEST_F(LeaseTest, AnotherHoldersLiveLeaseBlocks) {
  Candidate a(api_, clock_, "a"), b(api_, clock_, "b");
  a.elector.Tick();
  for (int i = 0; i < 20; ++i) {  // 40 s: a renews every 2 s, b never gets it
    clock_.Advance(seconds(2));
    a.elector.Tick();
    b.elector.Tick();
  }
  EXPECT_TRUE(a.elector.IsLeader());
  EXPECT_FALSE(b.elector.IsLeader());
  EXPECT_TRUE(b.started.empty());
  EXPECT_EQ(b.elector.ObservedHolder(), "a");
  EXPECT_EQ(Spec()["holderIdentity"], "a");
}

TEST_F(LeaseTest, ExpiryIsJudgedOnLocallyObservedTimeNotTheTimestamp) {
  // A lease last renewed in 2001 by a holder we have never seen: its timestamp says "expired long ago", but
  // we only know it stopped changing once we have watched it not change for the lease duration.
  api_.SetSpec(kKey, {{"holderIdentity", "old"}, {"leaseDurationSeconds", 15},
                      {"renewTime", "2001-01-01T00:00:00.000000Z"}, {"leaseTransitions", 4}});
  Candidate b(api_, clock_, "b");
  b.elector.Tick();
  EXPECT_FALSE(b.elector.IsLeader());
  clock_.Advance(seconds(14));
  b.elector.Tick();
  EXPECT_FALSE(b.elector.IsLeader());
  clock_.Advance(seconds(1));
  b.elector.Tick();
  EXPECT_TRUE(b.elector.IsLeader());
  EXPECT_EQ(b.elector.Epoch(), 5u);
  EXPECT_EQ(Spec()["holderIdentity"], "b");
}

TEST_F(LeaseTest, AFutureTimestampDoesNotBlockForever) {
  api_.SetSpec(kKey, {{"holderIdentity", "skewed"}, {"leaseDurationSeconds", 15},
                      {"renewTime", "2999-01-01T00:00:00.000000Z"}, {"leaseTransitions", 1}});
  Candidate b(api_, clock_, "b");
  b.elector.Tick();
  clock_.Advance(seconds(16));
  b.elector.Tick();
  EXPECT_TRUE(b.elector.IsLeader());
}

TEST_F(LeaseTest, ARenewalSeenRestartsTheExpiryClock) {
  api_.SetSpec(kKey, {{"holderIdentity", "x"}, {"leaseDurationSeconds", 15}, {"renewTime", "t1"}});
  Candidate b(api_, clock_, "b");
  b.elector.Tick();
  clock_.Advance(seconds(10));
  api_.SetSpec(kKey, {{"holderIdentity", "x"}, {"leaseDurationSeconds", 15}, {"renewTime", "t2"}});
  b.elector.Tick();  // observes the renewal at t=10
  clock_.Advance(seconds(10));
  b.elector.Tick();  // t=20: only 10 s since the change was seen
  EXPECT_FALSE(b.elector.IsLeader());
  clock_.Advance(seconds(5));
  b.elector.Tick();
  EXPECT_TRUE(b.elector.IsLeader());
}

TEST_F(LeaseTest, ConflictOnUpdateRereadsAndRetries) {
  api_.SetSpec(kKey, {{"holderIdentity", ""}, {"leaseDurationSeconds", 1}, {"leaseTransitions", 3}});
  Candidate a(api_, clock_, "a");
  // Someone else touches the lease between a's read and its write: the write gets 409.
  api_.BeforeNextPut([&] {
    api_.SetSpec(kKey, {{"holderIdentity", ""}, {"leaseDurationSeconds", 1}, {"leaseTransitions", 3},
                        {"renewTime", "touched"}});
  });
  a.elector.Tick();
  EXPECT_TRUE(a.elector.IsLeader());
  EXPECT_EQ(a.elector.counters().conflicts, 1u);
  EXPECT_EQ(api_.Count("GET"), 2);
  EXPECT_EQ(api_.Count("PUT"), 2);
  EXPECT_EQ(a.elector.Epoch(), 4u);
}

TEST_F(LeaseTest, ConflictWhenTheWinnerTookItMeansNotLeading) {
  api_.SetSpec(kKey, {{"holderIdentity", ""}, {"leaseDurationSeconds", 1}});
  Candidate a(api_, clock_, "a");
  api_.BeforeNextPut([&] {
    api_.SetSpec(kKey, {{"holderIdentity", "b"}, {"leaseDurationSeconds", 15}, {"renewTime", "now"}});
  });
  a.elector.Tick();
  EXPECT_FALSE(a.elector.IsLeader());
  EXPECT_EQ(a.elector.ObservedHolder(), "b");
}

TEST_F(LeaseTest, CreateRaceReadsTheWinnersLease) {
  Candidate b(api_, clock_, "b");
  // b reads 404, but "a" creates the lease before b's create arrives: b's POST gets 409, b reads a's lease.
  api_.BeforeNext("POST", [&] {
    api_.SetSpec(kKey, {{"holderIdentity", "a"}, {"leaseDurationSeconds", 15}, {"leaseTransitions", 1}});
  });
  b.elector.Tick();
  EXPECT_FALSE(b.elector.IsLeader());
  EXPECT_EQ(b.elector.ObservedHolder(), "a");
  EXPECT_EQ(b.elector.counters().conflicts, 1u);
  EXPECT_EQ(api_.Count("GET"), 2);
}

TEST_F(LeaseTest, ReleaseOnShutdownLetsTheSuccessorTakeOverAtOnceWithAHigherEpoch) {
  Candidate a(api_, clock_, "a"), b(api_, clock_, "b");
  a.elector.Tick();
  b.elector.Tick();
  ASSERT_TRUE(a.elector.IsLeader());
  ASSERT_FALSE(b.elector.IsLeader());
  EXPECT_TRUE(a.elector.Release().ok());
  EXPECT_FALSE(a.elector.IsLeader());
  EXPECT_EQ(a.stopped, 1);
  EXPECT_FALSE(Spec().contains("holderIdentity"));
  EXPECT_EQ(Spec()["leaseDurationSeconds"], 1);
  b.elector.Tick();  // no waiting
  EXPECT_TRUE(b.elector.IsLeader());
  EXPECT_GT(b.elector.Epoch(), a.elector.Epoch());
  EXPECT_EQ(b.started, std::vector<uint64_t>{2});
}

TEST_F(LeaseTest, EpochGrowsWithEveryLeadershipChange) {
  Candidate a(api_, clock_, "a"), b(api_, clock_, "b");
  std::vector<uint64_t> epochs;
  for (int round = 0; round < 3; ++round) {
    for (Candidate* c : {&a, &b}) {
      c->elector.Tick();
      ASSERT_TRUE(c->elector.IsLeader());
      epochs.push_back(c->elector.Epoch());
      ASSERT_TRUE(c->elector.Release().ok());
    }
  }
  for (size_t i = 1; i < epochs.size(); ++i) EXPECT_GT(epochs[i], epochs[i - 1]);
}

TEST_F(LeaseTest, SameIdentityReacquiringAfterARestartGetsANewEpoch) {
  {
    Candidate a(api_, clock_, "a");
    a.elector.Tick();
    EXPECT_EQ(a.elector.Epoch(), 1u);
  }  // crashed without releasing
  Candidate again(api_, clock_, "a");
  again.elector.Tick();
  EXPECT_TRUE(again.elector.IsLeader());
  EXPECT_EQ(again.elector.Epoch(), 2u);
}

TEST_F(LeaseTest, LeaderThatCannotRenewStepsDownAtTheRenewDeadline) {
  Candidate a(api_, clock_, "a");
  a.elector.Tick();
  api_.SetFailing(true);
  for (int t = 2; t < 10; t += 2) {
    clock_.Advance(seconds(2));
    a.elector.Tick();
    EXPECT_TRUE(a.elector.IsLeader()) << t;
  }
  clock_.Advance(seconds(2));  // t = 10 s without a renewal
  a.elector.Tick();
  EXPECT_FALSE(a.elector.IsLeader());
  EXPECT_EQ(a.stopped, 1);
  // Before a's lease would expire for others (15 s), a has stopped.
  api_.SetFailing(false);
  Candidate b(api_, clock_, "b");
  b.elector.Tick();
  EXPECT_FALSE(b.elector.IsLeader());
  // Shutting down after the step-down still hands the Lease back: b need not wait for it to expire.
  EXPECT_TRUE(a.elector.Release().ok());
  EXPECT_EQ(a.stopped, 1);
  b.elector.Tick();
  EXPECT_TRUE(b.elector.IsLeader());
}

TEST_F(LeaseTest, LeaderThatSeesAnotherHolderStepsDownAtOnce) {
  Candidate a(api_, clock_, "a");
  a.elector.Tick();
  api_.SetSpec(kKey, {{"holderIdentity", "b"}, {"leaseDurationSeconds", 15}, {"leaseTransitions", 2}});
  clock_.Advance(seconds(2));
  a.elector.Tick();
  EXPECT_FALSE(a.elector.IsLeader());
  EXPECT_EQ(a.stopped, 1);
}

TEST_F(LeaseTest, RunAndStopReleaseOnARealClock) {
  LeaseOptions o = Candidate::Options("runner");
  o.lease_duration = milliseconds(300);
  o.renew_deadline = milliseconds(200);
  o.retry_period = milliseconds(20);
  std::atomic<int> started{0}, stopped{0};
  LeaderElector e(api_, o, {.on_started_leading = [&](uint64_t) { ++started; },
                            .on_stopped_leading = [&] { ++stopped; }});
  std::thread t([&] { e.Run(); });
  for (int i = 0; i < 200 && !e.IsLeader(); ++i) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(e.IsLeader());
  std::this_thread::sleep_for(milliseconds(100));
  e.Stop();
  t.join();
  EXPECT_EQ(started, 1);
  EXPECT_EQ(stopped, 1);
  EXPECT_FALSE(e.IsLeader());
  EXPECT_FALSE(Spec().contains("holderIdentity"));
  EXPECT_GE(api_.Count("PUT"), 3);  // renewals happened
}

}  // namespace
}  // namespace memha::leader
