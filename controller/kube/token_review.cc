#include "controller/kube/token_review.h"

#include <openssl/sha.h>

#include <nlohmann/json.hpp>

namespace memha::kube {
namespace {

constexpr const char* kPodNameKey = "authentication.kubernetes.io/pod-name";
constexpr const char* kPodUidKey = "authentication.kubernetes.io/pod-uid";
constexpr std::string_view kServiceAccountPrefix = "system:serviceaccount:";

std::string Sha256(const std::string& s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

// The single value of user.extra[key], or "" when absent or not exactly one string.
std::string OneExtra(const nlohmann::json& user, const char* key) {
  auto extra = user.find("extra");
  if (extra == user.end() || !extra->is_object()) return "";
  auto values = extra->find(key);
  if (values == extra->end() || !values->is_array() || values->size() != 1 || !(*values)[0].is_string()) return "";
  return (*values)[0].get<std::string>();
}

}  // namespace

Result<PodIdentity> ParseTokenReviewStatus(const std::string& body, const std::string& audience) {
  nlohmann::json review = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!review.is_object()) return Status::Internal("TokenReview answer is not JSON");
  const nlohmann::json status = review.value("status", nlohmann::json::object());
  if (!status.is_object() || !status.value("authenticated", false)) {
    std::string why = status.is_object() ? status.value("error", "") : "";
    return Status::InvalidArgument("token not authenticated" + (why.empty() ? "" : ": " + why));
  }
  // The API server answers for the audiences it could verify; an authenticator that ignores audiences answers
  // none, and a token for another audience (the pod's API token) must never be taken for ours.
  bool ours = false;
  if (auto a = status.find("audiences"); a != status.end() && a->is_array()) {
    for (const auto& v : *a) ours = ours || (v.is_string() && v.get<std::string>() == audience);
  }
  if (!ours) return Status::InvalidArgument("token is not for audience " + audience);
  const nlohmann::json user = status.value("user", nlohmann::json::object());
  std::string username = user.is_object() ? user.value("username", "") : "";
  if (username.compare(0, kServiceAccountPrefix.size(), kServiceAccountPrefix) != 0) {
    return Status::InvalidArgument("token is not a ServiceAccount's (user " + username + ")");
  }
  std::string rest = username.substr(kServiceAccountPrefix.size());
  size_t colon = rest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return Status::InvalidArgument("malformed ServiceAccount username " + username);
  }
  PodIdentity id{rest.substr(0, colon), OneExtra(user, kPodNameKey), OneExtra(user, kPodUidKey),
                 rest.substr(colon + 1)};
  if (id.name.empty() || id.uid.empty()) {
    return Status::InvalidArgument("token of " + username + " is not bound to a pod");
  }
  return id;
}

PodTokenReviewer::PodTokenReviewer(KubeApi& api, Options options, std::function<Clock::time_point()> now)
    : api_(api), options_(std::move(options)), now_(std::move(now)) {}

uint64_t PodTokenReviewer::reviews() const {
  std::lock_guard lock(mu_);
  return reviews_;
}

Result<PodIdentity> PodTokenReviewer::Review(const std::string& token, ReviewFailure* failure) {
  *failure = ReviewFailure::kRefused;
  if (token.empty()) return Status::InvalidArgument("no bearer token");
  const std::string key = Sha256(token);
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      if (now_() < it->second.second) return it->second.first;
      cache_.erase(it);
    }
    ++reviews_;
  }
  nlohmann::json request = {{"apiVersion", "authentication.k8s.io/v1"},
                            {"kind", "TokenReview"},
                            {"spec", {{"token", token}, {"audiences", {options_.audience}}}}};
  auto res = api_.Request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", request.dump());
  if (!res.ok() || (res.value().status != 201 && res.value().status != 200)) {
    *failure = ReviewFailure::kUnavailable;
    return Status::Unavailable("TokenReview: " + (res.ok() ? "HTTP " + std::to_string(res.value().status) + ": " +
                                                                 res.value().body.substr(0, 200)
                                                           : res.status().message()));
  }
  auto id = ParseTokenReviewStatus(res.value().body, options_.audience);
  if (!id.ok()) {
    if (id.status().code() == Status::Code::kInternal) *failure = ReviewFailure::kUnavailable;
    return id.status();
  }
  std::lock_guard lock(mu_);
  if (cache_.size() >= options_.cache_max) cache_.clear();
  cache_[key] = {id.value(), now_() + options_.cache_ttl};
  return id;
}

}  // namespace memha::kube
