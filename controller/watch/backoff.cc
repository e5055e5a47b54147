#include "controller/watch/backoff.h"

#include <algorithm>
#include <cmath>

namespace memha::watch {

Backoff::Backoff(BackoffPolicy policy, uint64_t seed) : policy_(policy), rng_(seed) {}

kube::Duration Backoff::Next() {
  double base = std::chrono::duration<double>(policy_.initial).count() *
                std::pow(policy_.factor, std::min(attempts_, 62));
  base = std::min(base, std::chrono::duration<double>(policy_.max).count());
  ++attempts_;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double d = base * (1.0 - policy_.jitter * u(rng_));
  return std::chrono::duration_cast<kube::Duration>(std::chrono::duration<double>(d));
}

std::optional<kube::Duration> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() || value.size() > 9) return std::nullopt;
  long secs = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    secs = secs * 10 + (c - '0');
  }
  return std::chrono::seconds(secs);
}

}  // namespace memha::watch
