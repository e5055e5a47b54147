#include "sidecar/admin/loop_heartbeat.h"

#include <algorithm>

namespace memha {

LoopHeartbeat::LoopHeartbeat(event_base* loop, std::function<void(double)> on_lag)
    : last_beat_(Clock::now().time_since_epoch().count()), previous_(Clock::now()), on_lag_(std::move(on_lag)) {
  timer_.reset(event_new(loop, -1, EV_PERSIST, &BeatCb, this));
  timeval tv = ToTimeval(kInterval);
  event_add(timer_.get(), &tv);
}

LoopHeartbeat::~LoopHeartbeat() = default;

void LoopHeartbeat::BeatCb(evutil_socket_t, short, void* arg) { static_cast<LoopHeartbeat*>(arg)->Beat(); }

void LoopHeartbeat::Beat() {
  Clock::time_point now = Clock::now();
  last_beat_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  if (on_lag_) {
    auto late = std::max(Clock::duration::zero(), now - previous_ - Clock::duration(kInterval));
    on_lag_(std::chrono::duration<double>(late).count());
  }
  previous_ = now;
}

Clock::duration LoopHeartbeat::Age() const {
  Clock::time_point last{Clock::duration(last_beat_.load(std::memory_order_relaxed))};
  return std::max(Clock::duration::zero(), Clock::now() - last);
}

}  // namespace memha
