#pragma once
// Who is calling: a pod's projected ServiceAccount token, checked by the API server (TokenReview), never by us.
// The sidecar's boot fetch (GET /v1/topology?pod=ns/name) presents its pod's token (audience "memha", bound to
// the pod, rotated by the kubelet); the API server says whether it is valid for that audience and which pod it is
// bound to (user.extra "authentication.kubernetes.io/pod-name" and "pod-uid"). A token not bound to a pod (a plain
// ServiceAccount token, a user's) is refused: nothing but a pod reads a topology.
//
// Positive answers are kept for `cache_ttl` (by SHA-256 of the token) so a fleet of sidecars booting at once costs
// one review each, not one per retry; refusals are not kept (a token may become valid: clock skew at start).
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "common/status.h"
#include "controller/kube/api.h"

namespace memha::kube {

inline constexpr const char* kSidecarTokenAudience = "memha";

struct PodIdentity {
  std::string ns;               // from the ServiceAccount username system:serviceaccount:<ns>:<sa>
  std::string name;             // the bound pod
  std::string uid;              // the bound pod's uid
  std::string service_account;  // <sa>
  std::string Pod() const { return ns + "/" + name; }
};

// Why a token was not accepted: the caller answers 401 for kRefused, 503 for kUnavailable.
enum class ReviewFailure { kRefused, kUnavailable };

class PodTokenReviewer {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::string audience = kSidecarTokenAudience;
    std::chrono::seconds cache_ttl{30};
    size_t cache_max = 10000;  // entries; the cache starts over when full
  };
  PodTokenReviewer(KubeApi& api, Options options, std::function<Clock::time_point()> now = Clock::now);

  // The pod `token` is bound to, or why not (`failure` set when non-ok). Thread-safe.
  Result<PodIdentity> Review(const std::string& token, ReviewFailure* failure);

  uint64_t reviews() const;  // TokenReviews sent (cache misses)

 private:
  KubeApi& api_;
  Options options_;
  std::function<Clock::time_point()> now_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<PodIdentity, Clock::time_point>> cache_;  // sha256(token) -> identity, expiry
  uint64_t reviews_ = 0;
};

// The TokenReview body's status, parsed (exposed for tests): ok only when authenticated, `audience` among the
// status audiences, a ServiceAccount username and exactly one pod-name and pod-uid.
Result<PodIdentity> ParseTokenReviewStatus(const std::string& body, const std::string& audience);

}  // namespace memha::kube
