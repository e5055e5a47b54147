#pragma once
// Signed topology pushes (DESIGN.md "Topology push"; docs/DEPLOY.md "Trust model").
//
// The controller signs, with Ed25519, the push body together with the pod it is meant for (namespace/name and uid),
// the time it was signed, and whether it is an epoch reset. The sidecar verifies with the controller's public keys
// that the injection gave it (current and next, so a key can rotate without restarting pods) and refuses a push
// for another pod, a replay (a timestamp not newer than the last accepted one), a timestamp outside its skew
// window, an unsigned push and a bad signature.
//
// Headers of PUT /v1/topology:
//   X-Memha-Pod: ns/name     X-Memha-Pod-Uid: uid (may be empty)     X-Memha-Timestamp: unix milliseconds
//   X-Memha-Reset: 0|1       X-Memha-Signature: base64 Ed25519 signature of PushSigningMessage()
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace memha::crypto {

inline constexpr const char* kPodHeader = "X-Memha-Pod";
inline constexpr const char* kPodUidHeader = "X-Memha-Pod-Uid";
inline constexpr const char* kTimestampHeader = "X-Memha-Timestamp";
inline constexpr const char* kResetHeader = "X-Memha-Reset";
inline constexpr const char* kSignatureHeader = "X-Memha-Signature";

struct PushEnvelope {
  std::string pod;         // "ns/name"
  std::string pod_uid;     // empty: not bound to an incarnation
  int64_t timestamp_ms = 0;
  bool reset = false;      // "accept this generation even if you hold a newer one" (epoch lockout recovery)
};

// The bytes that are signed: a domain tag, the envelope, one per line, then the body.
std::string PushSigningMessage(const PushEnvelope& envelope, std::string_view body);

// Why a push was refused. Closed set; also the `reason` metric label.
enum class PushRefusal : uint8_t {
  kUnsigned,      // no signature, timestamp or pod header
  kBadSignature,  // does not verify with any configured key (or malformed)
  kWrongPod,      // signed for another pod (name or uid)
  kReplay,        // timestamp not newer than the last accepted push
  kSkew,          // timestamp outside the window around the sidecar's clock (stale or from the future)
  kCount
};
std::string_view ToString(PushRefusal refusal);

// Signs pushes with the controller's current private key. Thread-safe; the key can be replaced (rotation).
class PushSigner {
 public:
  using Now = std::function<int64_t()>;  // unix ms
  explicit PushSigner(std::string seed, Now now = nullptr);
  Status Valid() const;
  void SetKey(std::string seed);
  // The headers (name, value) of a push of `body` to `pod`.
  Result<std::vector<std::pair<std::string, std::string>>> Sign(const std::string& pod, const std::string& pod_uid,
                                                                bool reset, std::string_view body) const;

 private:
  Now now_;
  mutable std::mutex mu_;
  std::string seed_;
};

// The sidecar's side. Thread-safe.
class PushVerifier {
 public:
  using Now = std::function<int64_t()>;  // unix ms
  struct Options {
    std::vector<std::string> public_keys;  // raw 32 bytes each: current and next
    std::string pod;                       // this pod, "ns/name"
    std::string pod_uid;                   // empty: pushes are checked by name only
    std::chrono::milliseconds max_skew{std::chrono::seconds(60)};
    Now now;                               // null: the system clock
  };
  explicit PushVerifier(Options options);

  // Decided on headers alone (no body read yet): presence of the signature headers and the target pod.
  // `header` returns the value of a header, or nullopt.
  std::optional<PushRefusal> CheckHead(const std::function<std::optional<std::string>(const char*)>& header) const;
  // The full check; on success the timestamp becomes the last accepted one (a replay of it is refused) and
  // the envelope is returned.
  Result<PushEnvelope> Verify(const std::function<std::optional<std::string>(const char*)>& header,
                              std::string_view body, PushRefusal* refusal);

 private:
  Options options_;
  std::mutex mu_;
  int64_t last_timestamp_ms_ = 0;
};

// Parses a list of base64 public keys (comma or whitespace separated) into raw keys.
Result<std::vector<std::string>> ParsePublicKeys(std::string_view text);

int64_t UnixMillisNow();

}  // namespace memha::crypto
