#pragma once
// The shared bearer token (a mounted Secret): read from a file, re-read at most every `refresh` so a rotated
// Secret is picked up without a restart. Thread-safe.
#include <chrono>
#include <mutex>
#include <string>

#include "common/status.h"

namespace memha::push {

class TokenFile {
 public:
  // An empty path means a fixed token (tests, or no authentication configured).
  explicit TokenFile(std::string path, std::string fixed = "",
                     std::chrono::seconds refresh = std::chrono::seconds(30));

  // Reads the file now; fails when it is missing or empty (startup check).
  Status Load();
  // The current token; a failed re-read keeps the last good one.
  std::string Get();
  // Replaces the token (the shared Secret was read again); ignored when empty or when a file is the source.
  void Set(std::string token);

 private:
  std::string path_;
  std::chrono::seconds refresh_;
  std::mutex mu_;
  std::string token_;
  std::chrono::steady_clock::time_point read_at_{};
};

}  // namespace memha::push
