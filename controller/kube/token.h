#pragma once
// The bearer token for API requests: a static token, or a file re-read at most `refresh` apart and at once
// after a 401 (projected service-account tokens rotate; kubelet rewrites the file before the old one expires).
#include <chrono>
#include <mutex>
#include <string>

#include "controller/kube/clock.h"

namespace memha::kube {

class TokenSource {
 public:
  TokenSource(std::string static_token, std::string file, Clock& clock,
              Duration refresh = std::chrono::seconds(60));

  // The token to send now ("" = none). Re-reads the file when the cached copy is older than `refresh`.
  std::string Get();
  // After a 401: re-read the file now. False when there is no file to re-read (a retry cannot help).
  bool Refresh();
  bool FileBased() const { return !file_.empty(); }

 private:
  void ReadLocked();  // mu_ held
  const std::string static_token_;
  const std::string file_;
  Clock& clock_;
  const Duration refresh_;
  std::mutex mu_;
  std::string token_;
  bool loaded_ = false;
  SteadyTime loaded_at_{};
};

}  // namespace memha::kube
