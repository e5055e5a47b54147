#pragma once
// The shared bearer token (a mounted Secret): read from a file, re-read at most every `refresh` so a rotated
// Secret is picked up without a restart. Thread-safe.
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha::push {

class TokenFile {
 public:
  // An empty path means a fixed token (tests, or no authentication configured).
  explicit TokenFile(std::string path, std::string fixed = "",
                     std::chrono::seconds refresh = std::chrono::seconds(30),
                     std::chrono::seconds grace = std::chrono::seconds(120));

  // Reads the file now; fails when it is missing or empty (startup check).
  Status Load();
  // The current token; a failed re-read keeps the last good one.
  std::string Get();
  // Replaces the token (the shared Secret was read again); ignored when empty or when a file is the source.
  void Set(std::string token);
  // A token presented to the controller (GET /v1/topology): the current one, or the one before it for `grace`
  // after a rotation, so a sidecar whose mounted copy the kubelet has not refreshed yet can still boot.
  // Constant-time comparisons.
  bool Accepts(std::string_view presented);

 private:
  std::string path_;
  std::chrono::seconds refresh_;
  std::mutex mu_;
  void Refresh();                        // mu_ held
  void Replace(std::string token);       // mu_ held
  std::chrono::seconds grace_;
  std::string token_;
  std::string previous_;                 // the token before the last change
  std::chrono::steady_clock::time_point changed_at_{};
  std::chrono::steady_clock::time_point read_at_{};
};

}  // namespace memha::push
