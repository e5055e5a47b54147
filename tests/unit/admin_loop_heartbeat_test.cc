// The event loop's heartbeat: young while the loop turns, old once it stops turning, lag reported per beat.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "sidecar/admin/loop_heartbeat.h"

namespace memha {
namespace {

using namespace std::chrono_literals;

TEST(LoopHeartbeat, AgesWhenTheLoopStopsTurning) {
  EventBasePtr base(event_base_new());
  std::vector<double> lags;
  LoopHeartbeat beat(base.get(), [&](double s) { lags.push_back(s); });
  timeval run_for = ToTimeval(700ms);
  event_base_loopexit(base.get(), &run_for);
  event_base_dispatch(base.get());
  EXPECT_LT(beat.Age(), LoopHeartbeat::kInterval + 100ms) << "a turning loop beats every 250 ms";
  EXPECT_GE(lags.size(), 2u);

  // A callback that blocks the loop for 600 ms: no beat meanwhile, and the next beat reports it as lag.
  EventPtr blocker(evtimer_new(base.get(), [](evutil_socket_t, short, void*) { std::this_thread::sleep_for(600ms); },
                               nullptr));
  timeval soon = ToTimeval(10ms);
  event_add(blocker.get(), &soon);
  std::thread watcher([&] {
    std::this_thread::sleep_for(450ms);
    EXPECT_GT(beat.Age(), 400ms) << "another thread sees the loop stuck";
  });
  lags.clear();
  run_for = ToTimeval(1200ms);
  event_base_loopexit(base.get(), &run_for);
  event_base_dispatch(base.get());
  watcher.join();
  ASSERT_FALSE(lags.empty());
  EXPECT_GT(*std::max_element(lags.begin(), lags.end()), 0.3);
  EXPECT_LT(beat.Age(), LoopHeartbeat::kInterval + 100ms);
}

}  // namespace
}  // namespace memha
