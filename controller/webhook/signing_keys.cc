#include "controller/webhook/signing_keys.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/crypto/ed25519.h"

namespace memha::webhook {
namespace {

using nlohmann::json;
constexpr int kAttempts = 4;

std::string ApiError(const std::string& what, const kube::ApiResponse& r) {
  return what + ": HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300);
}

Status CheckSeed(const std::string& seed, const char* which) {
  if (seed.size() != crypto::kEd25519KeyBytes) {
    return Status::InvalidArgument(std::string("signing key \"") + which + "\" is not a 32-byte Ed25519 seed");
  }
  return Status::Ok();
}

json SecretJson(const std::string& ns, const std::string& name, const SigningKeys& keys) {
  return json{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata",
               {{"name", name},
                {"namespace", ns},
                {"labels", {{"app.kubernetes.io/managed-by", "memha-controller"}}},
                {"annotations",
                 {{"memha.io/purpose", "Ed25519 seeds that sign topology pushes to the memha sidecars: current "
                                       "signs, next is injected beside it for rotation (docs/DEPLOY.md)"}}}}},
              {"type", "Opaque"},
              {"data",
               {{kSigningCurrentKey, crypto::Base64Encode(crypto::Base64Encode(keys.current))},
                {kSigningNextKey, crypto::Base64Encode(crypto::Base64Encode(keys.next))}}}};
}

// Secret data values are base64 of the stored bytes, and the stored bytes are the base64 seed (so the Secret reads
// like the file format under `kubectl get -o jsonpath`).
std::optional<std::string> DataSeed(const json& data, const char* key) {
  if (!data.is_object() || !data.contains(key) || !data[key].is_string()) return std::nullopt;
  auto text = crypto::Base64Decode(data[key].get<std::string>());
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
  return crypto::Base64Decode(*text);
}

}  // namespace

std::vector<std::string> SigningKeys::PublicKeys() const {
  std::vector<std::string> out;
  for (const std::string* seed : {&current, &next}) {
    if (seed->empty()) continue;
    auto pub = crypto::Ed25519PublicKey(*seed);
    if (!pub.ok()) return {};
    out.push_back(crypto::Base64Encode(pub.value()));
  }
  return out;
}

Result<SigningKeys> LoadOrCreateSigningKeys(kube::KubeApi& api, const std::string& ns, const std::string& name) {
  const std::string collection = "/api/v1/namespaces/" + ns + "/secrets";
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto got = api.Request("GET", collection + "/" + name);
    if (!got.ok()) return Status::Unavailable("GET secret " + ns + "/" + name + ": " + got.status().message());
    if (got.value().status == 200) {
      json secret;
      try {
        secret = json::parse(got.value().body);
      } catch (const std::exception&) {
        return Status::Unavailable("secret " + ns + "/" + name + " is not JSON");
      }
      json data = secret.value("data", json::object());
      auto current = DataSeed(data, kSigningCurrentKey);
      if (!current) return Status::InvalidArgument("Secret " + ns + "/" + name + " has no usable key \"current\"");
      if (Status s = CheckSeed(*current, kSigningCurrentKey); !s.ok()) return s;
      SigningKeys keys{*current, DataSeed(data, kSigningNextKey).value_or("")};
      if (!keys.next.empty()) {
        if (Status s = CheckSeed(keys.next, kSigningNextKey); !s.ok()) return s;
        return keys;
      }
      // Rotation step 2: `next` was promoted to `current` and removed; make the new `next`.
      auto fresh = crypto::GenerateEd25519();
      if (!fresh.ok()) return fresh.status();
      keys.next = fresh.value().seed;
      json update = SecretJson(ns, name, keys);
      update["metadata"]["resourceVersion"] = secret["metadata"].value("resourceVersion", "");
      auto put = api.Request("PUT", collection + "/" + name, update.dump());
      if (!put.ok()) return Status::Unavailable("update secret: " + put.status().message());
      if (put.value().status == 200) return keys;
      if (put.value().status != 409) return Status::Unavailable(ApiError("update secret", put.value()));
      continue;  // someone else changed it: read again
    }
    if (got.value().status != 404) return Status::Unavailable(ApiError("get secret", got.value()));
    auto a = crypto::GenerateEd25519();
    auto b = crypto::GenerateEd25519();
    if (!a.ok() || !b.ok()) return Status::Internal("cannot generate Ed25519 keys");
    SigningKeys keys{a.value().seed, b.value().seed};
    auto created = api.Request("POST", collection, SecretJson(ns, name, keys).dump());
    if (!created.ok()) return Status::Unavailable("create secret: " + created.status().message());
    if (created.value().status == 201 || created.value().status == 200) return keys;
    if (created.value().status != 409) return Status::Unavailable(ApiError("create secret", created.value()));
  }
  return Status::Unavailable("secret " + ns + "/" + name + ": still conflicting after retries");
}

Result<SigningKeys> LoadSigningKeysFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read " + path);
  SigningKeys keys;
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\t')) value.pop_back();
    auto seed = crypto::Base64Decode(value);
    if (!seed) return Status::InvalidArgument(path + ": \"" + name + "\" is not base64");
    if (name == kSigningCurrentKey) keys.current = *seed;
    if (name == kSigningNextKey) keys.next = *seed;
  }
  if (Status s = CheckSeed(keys.current, kSigningCurrentKey); !s.ok()) return Status::InvalidArgument(path + ": " + s.message());
  if (!keys.next.empty()) {
    if (Status s = CheckSeed(keys.next, kSigningNextKey); !s.ok()) return Status::InvalidArgument(path + ": " + s.message());
  }
  return keys;
}

void SigningKeyring::Set(SigningKeys keys) {
  std::lock_guard lock(mu_);
  keys_ = std::move(keys);
}

SigningKeys SigningKeyring::Get() const {
  std::lock_guard lock(mu_);
  return keys_;
}

std::vector<std::string> SigningKeyring::PublicKeys() const { return Get().PublicKeys(); }

}  // namespace memha::webhook
