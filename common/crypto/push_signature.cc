#include "common/crypto/push_signature.h"

#include <charconv>

#include "common/crypto/ed25519.h"

namespace memha::crypto {
namespace {

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string PushSigningMessage(const PushEnvelope& e, std::string_view body) {
  std::string m = "memha-push-v1\n";
  m += e.pod;
  m += '\n';
  m += e.pod_uid;
  m += '\n';
  m += std::to_string(e.timestamp_ms);
  m += '\n';
  m += e.reset ? "1" : "0";
  m += '\n';
  m.append(body);
  return m;
}

std::string_view ToString(PushRefusal refusal) {
  switch (refusal) {
    case PushRefusal::kUnsigned: return "unsigned";
    case PushRefusal::kBadSignature: return "bad_signature";
    case PushRefusal::kWrongPod: return "wrong_pod";
    case PushRefusal::kReplay: return "replay";
    case PushRefusal::kSkew: return "skew";
    case PushRefusal::kCount: break;
  }
  return "unknown";
}

PushSigner::PushSigner(std::string seed, Now now) : now_(std::move(now)), seed_(std::move(seed)) {}

Status PushSigner::Valid() const {
  std::lock_guard lock(mu_);
  auto pub = Ed25519PublicKey(seed_);
  return pub.ok() ? Status::Ok() : pub.status();
}

void PushSigner::SetKey(std::string seed) {
  std::lock_guard lock(mu_);
  seed_ = std::move(seed);
}

Result<std::vector<std::pair<std::string, std::string>>> PushSigner::Sign(const std::string& pod,
                                                                          const std::string& pod_uid, bool reset,
                                                                          std::string_view body) const {
  PushEnvelope e{pod, pod_uid, now_ ? now_() : UnixMillisNow(), reset};
  std::string seed;
  {
    std::lock_guard lock(mu_);
    seed = seed_;
  }
  auto sig = Ed25519Sign(seed, PushSigningMessage(e, body));
  if (!sig.ok()) return sig.status();
  return std::vector<std::pair<std::string, std::string>>{
      {kPodHeader, e.pod},
      {kPodUidHeader, e.pod_uid},
      {kTimestampHeader, std::to_string(e.timestamp_ms)},
      {kResetHeader, e.reset ? "1" : "0"},
      {kSignatureHeader, Base64Encode(sig.value())},
  };
}

PushVerifier::PushVerifier(Options options) : options_(std::move(options)) {}

std::optional<PushRefusal> PushVerifier::CheckHead(
    const std::function<std::optional<std::string>(const char*)>& header) const {
  auto pod = header(kPodHeader);
  if (!pod || !header(kSignatureHeader) || !header(kTimestampHeader)) return PushRefusal::kUnsigned;
  if (*pod != options_.pod) return PushRefusal::kWrongPod;
  auto uid = header(kPodUidHeader);
  if (uid && !uid->empty() && !options_.pod_uid.empty() && *uid != options_.pod_uid) return PushRefusal::kWrongPod;
  return std::nullopt;
}

Result<PushEnvelope> PushVerifier::Verify(const std::function<std::optional<std::string>(const char*)>& header,
                                          std::string_view body, PushRefusal* refusal) {
  auto fail = [&](PushRefusal r, const std::string& why) -> Result<PushEnvelope> {
    *refusal = r;
    return Status::InvalidArgument(why);
  };
  if (auto r = CheckHead(header)) {
    return fail(*r, *r == PushRefusal::kUnsigned ? "unsigned push: " + std::string(kSignatureHeader) + ", " +
                                                       kTimestampHeader + " and " + kPodHeader + " are required"
                                                 : "push signed for another pod (this is " + options_.pod + ")");
  }
  PushEnvelope e;
  e.pod = *header(kPodHeader);
  e.pod_uid = header(kPodUidHeader).value_or("");
  if (!ParseInt64(*header(kTimestampHeader), &e.timestamp_ms)) return fail(PushRefusal::kUnsigned, "bad timestamp");
  auto reset = header(kResetHeader).value_or("0");
  if (reset != "0" && reset != "1") return fail(PushRefusal::kBadSignature, "bad reset flag");
  e.reset = reset == "1";
  auto sig = Base64Decode(*header(kSignatureHeader));
  if (!sig) return fail(PushRefusal::kBadSignature, "signature is not base64");
  std::string message = PushSigningMessage(e, body);
  bool verified = false;
  for (const std::string& key : options_.public_keys) {
    if (Ed25519Verify(key, message, *sig)) {
      verified = true;
      break;
    }
  }
  if (!verified) return fail(PushRefusal::kBadSignature, "signature does not verify with the controller's keys");
  int64_t now = options_.now ? options_.now() : UnixMillisNow();
  int64_t skew = options_.max_skew.count();
  if (e.timestamp_ms < now - skew || e.timestamp_ms > now + skew) {
    return fail(PushRefusal::kSkew, "push signed at " + std::to_string(e.timestamp_ms) + " ms, " +
                                        std::to_string(now - e.timestamp_ms) + " ms from this clock (window " +
                                        std::to_string(skew) + " ms)");
  }
  std::lock_guard lock(mu_);
  if (e.timestamp_ms <= last_timestamp_ms_) {
    return fail(PushRefusal::kReplay, "replayed push: signed at " + std::to_string(e.timestamp_ms) +
                                          " ms, not after the last accepted one (" +
                                          std::to_string(last_timestamp_ms_) + " ms)");
  }
  last_timestamp_ms_ = e.timestamp_ms;
  return e;
}

Result<std::vector<std::string>> ParsePublicKeys(std::string_view text) {
  std::vector<std::string> keys;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find_first_of(", \t\r\n", i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(i, end - i);
    i = end + 1;
    if (token.empty()) continue;
    auto raw = Base64Decode(token);
    if (!raw || raw->size() != kEd25519KeyBytes) {
      return Status::InvalidArgument("not a base64 Ed25519 public key (32 bytes): " + std::string(token));
    }
    keys.push_back(*raw);
  }
  if (keys.empty()) return Status::InvalidArgument("no public key given");
  return keys;
}

}  // namespace memha::crypto
