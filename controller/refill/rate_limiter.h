#pragma once
// Token bucket: `rate` units per second, at most `burst` saved up. Take() never refuses: it returns how long the
// caller must wait before going on, so a batch bigger than the bucket is paid for afterwards (debt).
#include <algorithm>
#include <chrono>

namespace memha::refill {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  // rate <= 0: unlimited.
  RateLimiter(double rate, double burst, Clock::time_point now = Clock::now())
      : rate_(rate), burst_(std::max(burst, 1.0)), tokens_(std::max(burst, 1.0)), last_(now) {}

  std::chrono::microseconds Take(double amount, Clock::time_point now = Clock::now()) {
    if (rate_ <= 0) return std::chrono::microseconds(0);
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_) - amount;
    if (tokens_ >= 0) return std::chrono::microseconds(0);
    return std::chrono::microseconds(static_cast<long long>(-tokens_ / rate_ * 1e6));
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace memha::refill
