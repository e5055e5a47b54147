#include "controller/webhook/token_secret.h"

#include <exception>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "controller/webhook/base64.h"
#include "controller/webhook/sidecar_spec.h"

namespace memha::webhook {
namespace {

using nlohmann::json;

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

std::string ApiError(const char* what, const kube::ApiResponse& r) {
  std::string message;
  try {
    message = json::parse(r.body).value("message", "");
  } catch (const std::exception&) {
  }
  if (message.empty()) message = r.body.substr(0, 200);
  return std::string(what) + ": HTTP " + std::to_string(r.status) + (message.empty() ? "" : ": " + message);
}

constexpr int kAttempts = 4;  // a 409 (another replica raced us) is retried this often

}  // namespace

SidecarTokenSecrets::SidecarTokenSecrets(kube::KubeApi& api, Options options, Clock clock)
    : api_(api), options_(std::move(options)), clock_(std::move(clock)) {}

std::string SidecarTokenSecrets::SecretJson(const std::string& ns, const std::string& name, const std::string& token) {
  return json{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata",
               {{"name", name},
                {"namespace", ns},
                {"labels", {{kManagedByLabel, kManagedByValue}}},
                {"annotations",
                 {{"memha.io/purpose", "bearer token of the memha sidecars in this namespace (copied by the webhook)"}}}}},
              {"type", "Opaque"},
              {"data", {{kTokenSecretKey, Base64Encode(token)}}}}
      .dump();
}

Result<std::string> SidecarTokenSecrets::ReadToken() const {
  std::ifstream in(options_.token_file, std::ios::binary);
  if (!in) return Status::Unavailable("cannot read the sidecar token file " + options_.token_file);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  if (token.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Unavailable("the sidecar token file " + options_.token_file + " is empty");
  }
  return token;
}

Status SidecarTokenSecrets::Ensure(const std::string& ns) {
  if (!IsDnsLabel(ns)) return Status::InvalidArgument("bad namespace name \"" + ns + "\"");
  auto token = ReadToken();
  if (!token.ok()) return token.status();
  const auto now = clock_();
  {
    std::lock_guard lock(mu_);
    auto it = checked_.find(ns);
    if (it != checked_.end() && it->second.token == token.value() && now - it->second.at < options_.cache_ttl) {
      return Status::Ok();
    }
  }
  Status status = EnsureUncached(ns, token.value());
  if (status.ok()) {
    std::lock_guard lock(mu_);
    checked_[ns] = Checked{token.value(), now};
  }
  return status;
}

Status SidecarTokenSecrets::EnsureUncached(const std::string& ns, const std::string& token) {
  const std::string collection = "/api/v1/namespaces/" + ns + "/secrets";
  const std::string path = collection + "/" + options_.secret_name;
  const std::string want = Base64Encode(token);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto got = api_.Request("GET", path);
    if (!got.ok()) return Status::Unavailable("GET secret " + ns + "/" + options_.secret_name + ": " + got.status().message());
    const kube::ApiResponse& r = got.value();
    if (r.status == 404) {
      auto created = api_.Request("POST", collection, SecretJson(ns, options_.secret_name, token));
      if (!created.ok()) return Status::Unavailable("create secret: " + created.status().message());
      if (created.value().status == 201 || created.value().status == 200) return Status::Ok();
      if (created.value().status == 409) continue;  // created meanwhile (the other replica): compare it
      return Status::Unavailable(ApiError("create secret", created.value()));
    }
    if (r.status != 200) return Status::Unavailable(ApiError("get secret", r));
    json secret;
    try {
      secret = json::parse(r.body);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("secret is not JSON: ") + e.what());
    }
    const json data = secret.value("data", json::object());
    if (data.is_object() && data.value(kTokenSecretKey, "") == want) return Status::Ok();
    const json meta = secret.value("metadata", json::object());
    const json labels = meta.value("labels", json::object());
    if (!labels.is_object() || labels.value(kManagedByLabel, "") != kManagedByValue) {
      return Status::Conflict("Secret " + ns + "/" + options_.secret_name + " exists and is not managed by memha (label " +
                              kManagedByLabel + "=" + kManagedByValue + ")");
    }
    // Ours with an old token (the token was rotated): replace it, guarded by its resourceVersion.
    json updated = json::parse(SecretJson(ns, options_.secret_name, token));
    updated["metadata"]["resourceVersion"] = meta.value("resourceVersion", "");
    auto put = api_.Request("PUT", path, updated.dump());
    if (!put.ok()) return Status::Unavailable("update secret: " + put.status().message());
    if (put.value().status == 200) return Status::Ok();
    if (put.value().status == 409) continue;
    return Status::Unavailable(ApiError("update secret", put.value()));
  }
  return Status::Unavailable("secret " + ns + "/" + options_.secret_name + ": still conflicting after retries");
}

}  // namespace memha::webhook
