#pragma once
// Time as a dependency: the watcher, the leader elector and the token cache read time and sleep through a Clock,
// so tests run on a FakeClock (sleeps return at once and advance time) and the real clock wakes early on Stop().
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace memha::kube {

using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

// A stop flag that sleeping threads can wait on. Stop() is sticky.
class StopSignal {
 public:
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  bool Stopped() const {
    std::lock_guard lock(mu_);
    return stopped_;
  }
  // Waits up to `d` of real time; true when stopped.
  bool WaitFor(Duration d) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return stopped_; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopped_ = false;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() = 0;
  // Sleeps `d` on this clock; returns early when `stop` is signalled. True when stopped.
  virtual bool Sleep(Duration d, const StopSignal& stop) = 0;
};

class RealClock : public Clock {
 public:
  SteadyTime Now() override { return std::chrono::steady_clock::now(); }
  bool Sleep(Duration d, const StopSignal& stop) override { return stop.WaitFor(d); }
  static RealClock& Instance() {
    static RealClock clock;
    return clock;
  }
};

// Tests: time moves only through Advance() and Sleep(); every sleep is recorded.
class FakeClock : public Clock {
 public:
  SteadyTime Now() override {
    std::lock_guard lock(mu_);
    return now_;
  }
  bool Sleep(Duration d, const StopSignal& stop) override {
    {
      std::lock_guard lock(mu_);
      sleeps_.push_back(d);
      now_ += d;
    }
    return stop.Stopped();
  }
  void Advance(Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }
  std::vector<Duration> Sleeps() const {
    std::lock_guard lock(mu_);
    return sleeps_;
  }
  void ClearSleeps() {
    std::lock_guard lock(mu_);
    sleeps_.clear();
  }

 private:
  mutable std::mutex mu_;
  SteadyTime now_ = SteadyTime{} + std::chrono::hours(1000);
  std::vector<Duration> sleeps_;
};

}  // namespace memha::kube
