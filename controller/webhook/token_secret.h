#pragma once
// The sidecar token in every application namespace.
//
// A pod can only mount Secrets of its own namespace, so before the webhook lets a pod in with the sidecar it
// makes sure the Secret `memha-sidecar-token` (key `token`) in the pod's namespace exists: created if missing
// with the current token, left alone (and the pod not injected) if someone else owns a Secret of that name. A
// memha copy with another token is updated only with `update_existing` (the leader's TokenSync, after a
// rotation), never by the webhook. Skipped on dryRun (sideEffects: NoneOnDryRun).
// A namespace that was checked recently is not asked again (cache with a TTL), so a burst of pods costs one GET.
//
// The token itself is made by the controller, not by the chart (so `helm template` output stays deterministic):
// LoadOrCreateSharedToken keeps it in the Secret of the same name in the controller's namespace, created once
// with 32 random bytes; the second replica (409) reads the first one's.
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

inline constexpr const char* kSidecarTokenSecret = "memha-sidecar-token";

// The shared token from the Secret `name` in `ns` (the controller's namespace), created if it does not exist.
Result<std::string> LoadOrCreateSharedToken(kube::KubeApi& api, const std::string& ns,
                                            const std::string& name = kSidecarTokenSecret);

// The current token; asked on every check so a rotated token reaches the copies at once.
using TokenSource = std::function<Result<std::string>()>;
// A token read from a file on every call (tests, or a token mounted from elsewhere).
TokenSource FileTokenSource(std::string path);
inline TokenSource FixedTokenSource(std::string token) {
  return [token = std::move(token)]() -> Result<std::string> { return token; };
}

struct TokenSecretOptions {
  std::string secret_name = kSidecarTokenSecret;
  std::chrono::seconds cache_ttl{30};
  // false (the webhook): a memha copy holding another token is left as it is. Only the leader's TokenSync updates
  // copies; a webhook replica whose token is not yet the rotated one would otherwise write the old token back.
  bool update_existing = true;
};

class SidecarTokenSecrets {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Options = TokenSecretOptions;

  SidecarTokenSecrets(kube::KubeApi& api, TokenSource token, Options options = {},
                      Clock clock = std::chrono::steady_clock::now);

  // Thread-safe. Ok once the Secret in `ns` holds the current token.
  Status Ensure(const std::string& ns);

  // The Secret as the API expects it (for tests and the controller's own use).
  static std::string SecretJson(const std::string& ns, const std::string& name, const std::string& token);

 private:
  Status EnsureUncached(const std::string& ns, const std::string& token);

  kube::KubeApi& api_;
  TokenSource token_;
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
