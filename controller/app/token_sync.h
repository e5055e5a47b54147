#pragma once
// Keeps the sidecar bearer token current wherever it is used (docs/CONTROLLER.md "Token rotation").
//
// The token lives in one place (the shared Secret in the controller's namespace, or --token-file) and is used in
// three: the controller's own requests (pushes, and GET /v1/topology's check, through push::TokenFile), and the
// copy of the Secret in every application namespace, which the sidecars mount. Each round (every --token-refresh):
//   1. the shared Secret is read again (--token-file is re-read by TokenFile itself), so a rotation needs no
//      restart;
//   2. while leading, every namespace with a sidecar pod whose copy is not yet known to hold the current token is
//      brought up to date (create, or update a copy memha owns). Steady state costs no request per namespace.
// Hooks keep it free of the API client and of the reconciler, so it is tested without either.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/status.h"
#include "controller/push/token.h"

namespace memha::app {

class TokenSync {
 public:
  struct Hooks {
    std::function<Result<std::string>()> read_shared;  // null in --token-file mode
    std::function<bool()> leading;
    std::function<std::set<std::string>()> namespaces;  // of the pods that have a sidecar
    std::function<Status(const std::string& ns)> ensure;  // make that namespace's copy hold the current token
  };

  TokenSync(push::TokenFile* token, Hooks hooks) : token_(token), hooks_(std::move(hooks)) {}

  // Every this many rounds, every copy is checked again (one GET each), in case it was changed by hand.
  static constexpr uint64_t kRecheckEvery = 10;

  // One round; returns the number of namespaces whose copy is not known to be current (0 when not leading).
  // Stops early once `leading` turns false. Called from one thread.
  size_t Once();

  size_t Stale() const { return stale_.load(); }  // any thread (the metrics scrape)

 private:
  push::TokenFile* token_;
  Hooks hooks_;
  std::map<std::string, std::string> current_;  // namespace -> token its copy was confirmed to hold
  std::set<std::pair<std::string, std::string>> warned_;  // (namespace, message) already logged
  std::atomic<size_t> stale_{0};
  uint64_t rounds_ = 0;
};

}  // namespace memha::app
