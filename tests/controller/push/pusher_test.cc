#include "controller/push/pusher.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>

#include "tests/controller/push/fake_sidecar.h"

namespace memha::push {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const Topology> Topo(uint64_t epoch, uint64_t version) {
  auto t = std::make_shared<Topology>();
  t->epoch = epoch;
  t->version = version;
  PoolSpec p;
  p.name = "shop/cache-a";
  p.listen = "127.0.0.1:11211";
  MemberSpec m;
  m.name = "cache-a-0";
  m.address = "10.0.0.1:11211";
  p.primary.push_back(m);
  t->pools.push_back(p);
  return t;
}

bool Eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

class CountingObserver : public PushObserver {
 public:
  void OnPush(PushResult result, double) override { ++counts[static_cast<size_t>(result)]; }
  int count(PushResult r) const { return counts[static_cast<size_t>(r)].load(); }
  std::array<std::atomic<int>, static_cast<size_t>(PushResult::kCount)> counts{};
};

PusherOptions FastOptions() {
  PusherOptions o;
  o.parallelism = 4;
  o.connect_timeout = 500ms;
  o.request_timeout = 500ms;
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  o.refused_retry = 10s;
  o.resync = 60s;
  return o;
}

class PusherTest : public ::testing::Test {
 protected:
  CountingObserver observer_;
};

TEST_F(PusherTest, PushesEverySidecarAndTracksAcks) {
  std::vector<std::unique_ptr<FakeSidecar>> fakes;
  TopologyPusher pusher(FastOptions(), &observer_);
  for (int i = 0; i < 6; ++i) {
    fakes.push_back(std::make_unique<FakeSidecar>());
    pusher.Set({"shop/web-" + std::to_string(i), fakes.back()->address(), Topo(2, 10)});
  }
  EXPECT_EQ(pusher.Behind(), 6u);
  pusher.Start();
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(fakes[i]->applied_version(), 10u);
    EXPECT_EQ(fakes[i]->requests(), 1);
    auto s = pusher.Sidecar("shop/web-" + std::to_string(i));
    ASSERT_TRUE(s.has_value());
    EXPECT_TRUE(s->acked);
    EXPECT_EQ(s->acked_epoch, 2u);
    EXPECT_EQ(s->acked_version, 10u);
    EXPECT_EQ(s->last_result, PushResult::kOk);
  }
  EXPECT_EQ(observer_.count(PushResult::kOk), 6);
}

TEST_F(PusherTest, SameGenerationIsNotPushedAgain) {
  FakeSidecar fake;
  TopologyPusher pusher(FastOptions());
  pusher.Start();
  auto t = Topo(1, 1);
  pusher.Set({"shop/web", fake.address(), t});
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  for (int i = 0; i < 20; ++i) pusher.Set({"shop/web", fake.address(), Topo(1, 1)});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(fake.requests(), 1);
}

TEST_F(PusherTest, FailingSidecarIsRetriedWithGrowingBackoffUntilItAcks) {
  FakeSidecar fake;
  fake.fail_next(4);
  TopologyPusher pusher(FastOptions(), &observer_);
  pusher.Start();
  pusher.Set({"shop/web", fake.address(), Topo(1, 5)});
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  EXPECT_EQ(fake.requests(), 5);
  EXPECT_EQ(observer_.count(PushResult::kError), 4);
  auto t = fake.times();
  // Backoff 50, 100, 200, 400 ms, each jittered into [half, full]: the gaps grow.
  EXPECT_GE(t[1] - t[0], 25ms);
  EXPECT_GE(t[4] - t[3], 200ms);
  EXPECT_GT(t[4] - t[3], t[1] - t[0]);
  EXPECT_EQ(pusher.Sidecar("shop/web")->failures, 0);
}

TEST_F(PusherTest, UnauthorizedIsRejectedAndBackedOffNotHammered) {
  FakeSidecar fake;
  fake.set_mode(FakeSidecar::Mode::kUnauthorized);
  TopologyPusher pusher(FastOptions(), &observer_);
  pusher.Start();
  pusher.Set({"shop/web", fake.address(), Topo(1, 5)});
  std::this_thread::sleep_for(1000ms);
  // 50+100+200+400 ms of backoff (jittered down to half) fit at most ~6 attempts in a second.
  EXPECT_GE(fake.requests(), 2);
  EXPECT_LE(fake.requests(), 7);
  auto s = pusher.Sidecar("shop/web");
  EXPECT_EQ(s->last_result, PushResult::kRejected);
  EXPECT_NE(s->last_error.find("401"), std::string::npos) << s->last_error;
  EXPECT_FALSE(s->acked);
  EXPECT_EQ(pusher.Behind(), 1u);
}

TEST_F(PusherTest, RefusedIsNotRetriedHotButANewerStateIsSent) {
  FakeSidecar fake;
  fake.set_mode(FakeSidecar::Mode::kRefuse);
  TopologyPusher pusher(FastOptions(), &observer_);
  pusher.Start();
  pusher.Set({"shop/web", fake.address(), Topo(1, 5)});
  ASSERT_TRUE(Eventually([&] { return observer_.count(PushResult::kRefused) == 1; }));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(fake.requests(), 1);
  EXPECT_EQ(pusher.Sidecar("shop/web")->last_result, PushResult::kRefused);
  pusher.Set({"shop/web", fake.address(), Topo(1, 6)});
  ASSERT_TRUE(Eventually([&] { return fake.requests() == 2; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(fake.requests(), 2);
}

TEST_F(PusherTest, OlderGenerationThanTheSidecarsIsRefused) {
  FakeSidecar fake;
  TopologyPusher pusher(FastOptions(), &observer_);
  pusher.Start();
  pusher.Set({"shop/web", fake.address(), Topo(5, 1)});  // a newer leader pushed this
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  pusher.Set({"shop/web", fake.address(), Topo(4, 99)});  // an old leader's late state
  ASSERT_TRUE(Eventually([&] { return observer_.count(PushResult::kRefused) == 1; }));
  EXPECT_EQ(fake.applied_version(), 1u);
  EXPECT_EQ(pusher.Behind(), 1u);
}

TEST_F(PusherTest, HangingSidecarNeverBlocksTheOthers) {
  PusherOptions o = FastOptions();
  o.parallelism = 2;
  o.request_timeout = 2s;  // long enough that a loaded machine does not blur "before the timeout"
  FakeSidecar hanging;
  hanging.set_mode(FakeSidecar::Mode::kHang);
  std::vector<std::unique_ptr<FakeSidecar>> fakes;
  TopologyPusher pusher(o, &observer_);
  pusher.Set({"shop/a-hanging", hanging.address(), Topo(1, 1)});  // sorted first: sent first
  pusher.Start();
  ASSERT_TRUE(Eventually([&] { return hanging.requests() == 1; }));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    fakes.push_back(std::make_unique<FakeSidecar>());
    pusher.Set({"shop/web-" + std::to_string(i), fakes.back()->address(), Topo(1, 1)});
  }
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);  // before the hanging one times out
  ASSERT_TRUE(Eventually([&] { return observer_.count(PushResult::kTimeout) >= 1; }));
  // The observer hears of the timeout just before the pusher records it (CI under ASan saw the gap).
  EXPECT_TRUE(Eventually([&] { return pusher.Sidecar("shop/a-hanging")->last_result == PushResult::kTimeout; }));
}

TEST_F(PusherTest, SlowSidecarGetsOnlyTheNewestOfManyUpdates) {
  FakeSidecar slow;
  slow.set_delay(300ms);
  TopologyPusher pusher(FastOptions(), &observer_);
  pusher.Start();
  pusher.Set({"shop/web", slow.address(), Topo(1, 1)});
  ASSERT_TRUE(Eventually([&] { return slow.requests() == 1; }));
  for (uint64_t v = 2; v <= 50; ++v) {
    pusher.Set({"shop/web", slow.address(), Topo(1, v)});
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  EXPECT_EQ(slow.versions(), (std::vector<uint64_t>{1, 50}));
  EXPECT_EQ(slow.applied_version(), 50u);
  EXPECT_EQ(pusher.Sidecar("shop/web")->acked_version, 50u);
}

TEST_F(PusherTest, ResyncRepushesTheAcknowledgedState) {
  PusherOptions o = FastOptions();
  o.resync = 100ms;
  FakeSidecar fake;
  TopologyPusher pusher(o, &observer_);
  pusher.Start();
  pusher.Set({"shop/web", fake.address(), Topo(1, 7)});
  ASSERT_TRUE(Eventually([&] { return fake.requests() >= 4; }));
  for (uint64_t v : fake.versions()) EXPECT_EQ(v, 7u);
  EXPECT_EQ(pusher.Behind(), 0u);
}

TEST_F(PusherTest, StopAbortsRequestsInFlightAndStartResumes) {
  PusherOptions o = FastOptions();
  o.request_timeout = 10s;
  FakeSidecar fake;
  fake.set_mode(FakeSidecar::Mode::kHang);
  TopologyPusher pusher(o, &observer_);
  pusher.Start();
  pusher.Set({"shop/web", fake.address(), Topo(1, 1)});
  ASSERT_TRUE(Eventually([&] { return fake.in_handler() == 1; }));
  auto start = std::chrono::steady_clock::now();
  pusher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_FALSE(pusher.Running());
  fake.set_mode(FakeSidecar::Mode::kOk);
  fake.Release();
  pusher.Set({"shop/web", fake.address(), Topo(2, 1)});  // recorded while stopped, sent on Start
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(fake.requests(), 1);
  pusher.Start();
  ASSERT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  EXPECT_EQ(fake.applied_version(), 1u);
  EXPECT_EQ(pusher.Sidecar("shop/web")->acked_epoch, 2u);
}

TEST_F(PusherTest, ReplaceForgetsMissingSidecarsAndWaitsForAnAddress) {
  FakeSidecar a, b;
  TopologyPusher pusher(FastOptions());
  pusher.Start();
  pusher.Replace({{"shop/a", a.address(), Topo(1, 1)}, {"shop/b", "", Topo(1, 1)}});
  ASSERT_TRUE(Eventually([&] { return a.requests() == 1; }));
  EXPECT_EQ(pusher.Size(), 2u);
  // a's ack is processed just after the fake counted the request; b has no address yet: nothing to be behind on
  // (were it counted, Behind() would stay 1).
  EXPECT_TRUE(Eventually([&] { return pusher.Behind() == 0; }));
  pusher.Replace({{"shop/b", b.address(), Topo(1, 1)}});
  ASSERT_TRUE(Eventually([&] { return b.requests() == 1; }));
  EXPECT_EQ(pusher.Size(), 1u);
  EXPECT_FALSE(pusher.Sidecar("shop/a").has_value());
  pusher.Set({"shop/b", b.address(), Topo(1, 2)});
  ASSERT_TRUE(Eventually([&] { return b.requests() == 2; }));
  EXPECT_EQ(a.requests(), 1);
}

TEST_F(PusherTest, UnreachableSidecarFailsFastAsAnError) {
  // A port nobody listens on: connection refused, counted as an error, retried with backoff.
  std::string address;
  {
    FakeSidecar gone;
    address = gone.address();
  }
  TopologyPusher pusher(FastOptions(), &observer_);
  pusher.Start();
  pusher.Set({"shop/web", address, Topo(1, 1)});
  ASSERT_TRUE(Eventually([&] { return observer_.count(PushResult::kError) >= 2; }));
  EXPECT_GE(pusher.Sidecar("shop/web")->failures, 2);
}

TEST_F(PusherTest, AnUnreachableSidecarIsLoggedOnceNotOnEveryRetry) {
  // A pod whose sidecar is not there (not injected, being deleted) is retried for as long as the pod exists;
  // with 1,000 of them a warning per retry would be the controller's whole log.
  FakeSidecar back;  // first, so that it cannot take the closed port below
  std::string address;
  {
    FakeSidecar gone;
    address = gone.address();
  }
  TopologyPusher pusher(FastOptions(), &observer_);
  ::testing::internal::CaptureStderr();
  pusher.Start();
  pusher.Set({"shop/web", address, Topo(1, 1)});
  const bool failed = Eventually([&] { return observer_.count(PushResult::kError) >= 4; });
  pusher.Set({"shop/web", back.address(), Topo(1, 1)});  // the pod comes back at a new address
  const bool acked = Eventually([&] { return pusher.Sidecar("shop/web")->UpToDate(); });
  pusher.Stop();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(failed);
  ASSERT_TRUE(acked);
  size_t warnings = 0;
  for (size_t at = log.find("push failed pod=shop/web"); at != std::string::npos;
       at = log.find("push failed pod=shop/web", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << log;
}

TEST(PusherOptions, Validate) {
  EXPECT_TRUE(PusherOptions{}.Validate().ok());
  PusherOptions o;
  o.parallelism = 0;
  EXPECT_FALSE(o.Validate().ok());
  o = {};
  o.backoff_max = 1ms;
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace memha::push
