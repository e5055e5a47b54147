#include "controller/webhook/token_secret.h"

#include <exception>
#include <openssl/rand.h>

#include <fstream>
#include <optional>
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

SidecarTokenSecrets::SidecarTokenSecrets(kube::KubeApi& api, TokenSource token, Options options, Clock clock)
    : api_(api), token_(std::move(token)), options_(std::move(options)), clock_(std::move(clock)) {}

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

TokenSource FileTokenSource(std::string path) {
  return [path = std::move(path)]() -> Result<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::Unavailable("cannot read the sidecar token file " + path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
}

Result<std::string> LoadOrCreateSharedToken(kube::KubeApi& api, const std::string& ns, const std::string& name) {
  if (!IsDnsLabel(ns)) return Status::InvalidArgument("bad namespace name \"" + ns + "\"");
  const std::string collection = "/api/v1/namespaces/" + ns + "/secrets";
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto got = api.Request("GET", collection + "/" + name);
    if (!got.ok()) return Status::Unavailable("GET secret " + ns + "/" + name + ": " + got.status().message());
    if (got.value().status == 200) {
      std::optional<std::string> token;
      try {
        token = Base64Decode(json::parse(got.value().body)["data"].value(kTokenSecretKey, ""));
      } catch (const std::exception&) {
      }
      if (!token || token->find_first_not_of(" \t\r\n") == std::string::npos) {
        return Status::InvalidArgument("Secret " + ns + "/" + name + " has no usable key \"" + kTokenSecretKey + "\"");
      }
      return *token;
    }
    if (got.value().status != 404) return Status::Unavailable(ApiError("get secret", got.value()));
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) return Status::Internal("no randomness for the sidecar token");
    std::string token = Base64Encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
    for (char& c : token) c = c == '+' ? '-' : c == '/' ? '_' : c;  // URL-safe: no quoting anywhere
    auto created = api.Request("POST", collection, SidecarTokenSecrets::SecretJson(ns, name, token));
    if (!created.ok()) return Status::Unavailable("create secret: " + created.status().message());
    if (created.value().status == 201 || created.value().status == 200) return token;
    if (created.value().status != 409) return Status::Unavailable(ApiError("create secret", created.value()));
    // 409: the other replica created it first; read theirs.
  }
  return Status::Unavailable("secret " + ns + "/" + name + ": still conflicting after retries");
}

Status SidecarTokenSecrets::Ensure(const std::string& ns) {
  if (!IsDnsLabel(ns)) return Status::InvalidArgument("bad namespace name \"" + ns + "\"");
  auto token = token_();
  if (!token.ok()) return token.status();
  if (token.value().find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Unavailable("the sidecar token is empty");
  }
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
    // Ours with another token. The webhook leaves it (the leader's TokenSync brings it up to date); the leader
    // replaces it, guarded by its resourceVersion.
    if (!options_.update_existing) return Status::Ok();
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
