#pragma once
// Exponential backoff with jitter for API retries, and the Retry-After header.
#include <chrono>
#include <optional>
#include <random>
#include <string_view>

#include "controller/kube/clock.h"

namespace memha::watch {

struct BackoffPolicy {
  kube::Duration initial = std::chrono::milliseconds(500);
  kube::Duration max = std::chrono::seconds(30);
  double factor = 2.0;
  double jitter = 0.5;  // each delay is drawn from [base * (1 - jitter), base]
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy = {}, uint64_t seed = std::random_device{}());
  kube::Duration Next();  // the next delay; grows until `max`
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

// Retry-After in delta-seconds ("7"); HTTP-dates and garbage give nullopt.
std::optional<kube::Duration> ParseRetryAfter(std::string_view value);

}  // namespace memha::watch
