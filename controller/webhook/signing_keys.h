#pragma once
// The controller's push-signing keys (docs/DEPLOY.md "Signed pushes"): an Ed25519 key pair `current` that signs
// every push, and `next`, whose public key is injected beside the current one so a rotation (next becomes
// current) needs no pod restart. Kept in a Secret in the controller's namespace (created by the first replica
// that finds none; both replicas read the same one) or read from a mounted file. Re-read periodically.
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "controller/kube/api.h"

namespace memha::webhook {

inline constexpr const char* kSigningCurrentKey = "current";
inline constexpr const char* kSigningNextKey = "next";

struct SigningKeys {
  std::string current;  // raw 32-byte Ed25519 seeds
  std::string next;     // may be empty (file mode without a next key)
  // base64 raw public keys: current, then next if any. Empty on an invalid key.
  std::vector<std::string> PublicKeys() const;
  bool operator==(const SigningKeys&) const = default;
};

// Reads the Secret `name` in `ns`; creates it with two fresh keys if it is missing (a 409 from a racing replica
// reads the winner's). A Secret without `next` gets one added (guarded by its resourceVersion).
Result<SigningKeys> LoadOrCreateSigningKeys(kube::KubeApi& api, const std::string& ns, const std::string& name);
// A mounted file: lines "current: <base64 seed>" and optionally "next: <base64 seed>".
Result<SigningKeys> LoadSigningKeysFile(const std::string& path);

// The keys in use, shared by the pusher's signer and the webhook; thread-safe.
class SigningKeyring {
 public:
  void Set(SigningKeys keys);
  SigningKeys Get() const;
  std::vector<std::string> PublicKeys() const;

 private:
  mutable std::mutex mu_;
  SigningKeys keys_;
};

}  // namespace memha::webhook
