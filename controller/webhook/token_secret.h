#pragma once
// The sidecar token in every application namespace.
//
// A pod can only mount Secrets of its own namespace, so before the webhook lets a pod in with the sidecar it
// makes sure the Secret `memha-sidecar-token` (key `token`) in the pod's namespace holds the controller's
// current token: created if missing, updated if it is memha's and differs, left alone (and the pod not
// injected) if someone else owns a Secret of that name. Skipped on dryRun (sideEffects: NoneOnDryRun).
// A namespace that was checked recently is not asked again (cache with a TTL), so a burst of pods costs one GET.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "common/status.h"
#include "controller/kube/api.h"

namespace memha::webhook {

inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "memha-controller";

class SidecarTokenSecrets {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    std::string secret_name = "memha-sidecar-token";
    std::string token_file;  // the controller's own copy (a mounted Secret); re-read on every check
    std::chrono::seconds cache_ttl{30};
  };

  SidecarTokenSecrets(kube::KubeApi& api, Options options, Clock clock = std::chrono::steady_clock::now);

  // Thread-safe. Ok once the Secret in `ns` holds the current token.
  Status Ensure(const std::string& ns);

  // The Secret as the API expects it (for tests and the controller's own use).
  static std::string SecretJson(const std::string& ns, const std::string& name, const std::string& token);

 private:
  Result<std::string> ReadToken() const;
  Status EnsureUncached(const std::string& ns, const std::string& token);

  kube::KubeApi& api_;
  Options options_;
  Clock clock_;
  std::mutex mu_;
  struct Checked {
    std::string token;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Checked> checked_;  // guarded by mu_
};

}  // namespace memha::webhook
