#pragma once
// The shared bearer token, read from a mounted Secret file. Kubernetes updates a mounted Secret in place when it
// is rotated, so the file is re-read every minute, and at most once a second when a request's token does not
// match (a rotation the sidecar has not seen yet), without restarting anything.
#include <chrono>
#include <mutex>
#include <string>

namespace memha {

class TokenFile {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TokenFile(std::string path) : path_(std::move(path)) {}

  bool Load();                                   // false: missing or empty (the old token is kept)
  std::string Current();                         // re-reads when older than a minute
  bool Matches(const std::string& presented);    // constant-time; one re-read on mismatch (rate-limited)
  const std::string& path() const { return path_; }

 private:
  bool LoadLocked(Clock::time_point now);
  std::string path_;
  std::mutex mu_;
  std::string token_;
  Clock::time_point loaded_at_{};
  Clock::time_point last_miss_reload_{};
};

bool ReadTokenFile(const std::string& path, std::string* token);

}  // namespace memha
