#pragma once
// Liveness of the data plane, seen from another thread. A timer on the event loop stamps the time every 250 ms;
// the health server reads the stamp. A loop that is stuck (a callback that blocks, an endless loop, a deadlock)
// stops stamping, and /healthz fails with how long it has been stuck. The timer also measures how late it fires
// (loop lag): the time a ready event waits before the loop gets to it.
#include <atomic>
#include <chrono>
#include <functional>

#include "sidecar/core/libevent.h"

namespace memha {

class LoopHeartbeat {
 public:
  static constexpr std::chrono::milliseconds kInterval{250};

  // On the loop's thread (or before the loop runs). `on_lag` is called on the loop thread with every beat's
  // lateness in seconds.
  explicit LoopHeartbeat(event_base* loop, std::function<void(double)> on_lag = nullptr);
  ~LoopHeartbeat();  // on the loop's thread, or once the loop has stopped
  LoopHeartbeat(const LoopHeartbeat&) = delete;
  LoopHeartbeat& operator=(const LoopHeartbeat&) = delete;

  // Any thread: how long since the loop last turned (at most kInterval plus lag while it is healthy).
  Clock::duration Age() const;

 private:
  static void BeatCb(evutil_socket_t, short, void* arg);
  void Beat();

  std::atomic<Clock::rep> last_beat_;  // Clock ticks since its epoch
  Clock::time_point previous_;         // loop thread only
  std::function<void(double)> on_lag_;
  EventPtr timer_;
};

}  // namespace memha
