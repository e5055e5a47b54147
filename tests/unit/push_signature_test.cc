// Signed pushes: Ed25519 through OpenSSL, the envelope (pod, uid, timestamp, reset) and the sidecar's checks.
#include "common/crypto/push_signature.h"

#include <gtest/gtest.h>

#include <map>

#include "common/crypto/ed25519.h"

namespace memha::crypto {
namespace {

using Headers = std::map<std::string, std::string>;

Headers ToMap(const std::vector<std::pair<std::string, std::string>>& h) { return Headers(h.begin(), h.end()); }

std::function<std::optional<std::string>(const char*)> Lookup(const Headers& h) {
  return [&h](const char* name) -> std::optional<std::string> {
    auto it = h.find(name);
    if (it == h.end()) return std::nullopt;
    return it->second;
  };
}

class PushSignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    current_ = GenerateEd25519().value();
    next_ = GenerateEd25519().value();
  }
  PushVerifier Verifier(std::vector<std::string> keys) {
    return PushVerifier({std::move(keys), "shop/web-1", "uid-1", std::chrono::seconds(60), [this] { return now_; }});
  }
  Headers Signed(const std::string& seed, const std::string& pod = "shop/web-1", const std::string& uid = "uid-1",
                 bool reset = false, std::string_view body = kBody) {
    PushSigner signer(seed, [this] { return sign_at_; });
    return ToMap(signer.Sign(pod, uid, reset, body).value());
  }
  static constexpr std::string_view kBody = R"({"epoch":1,"version":2,"pools":[]})";
  Ed25519KeyPair current_, next_;
  int64_t now_ = 1'700'000'000'000;
  int64_t sign_at_ = 1'700'000'000'000;
};

TEST(Ed25519, SignVerifyAndBase64RoundTrip) {
  auto kp = GenerateEd25519().value();
  EXPECT_EQ(kp.seed.size(), 32u);
  EXPECT_EQ(Ed25519PublicKey(kp.seed).value(), kp.public_key);
  auto sig = Ed25519Sign(kp.seed, "hello").value();
  EXPECT_TRUE(Ed25519Verify(kp.public_key, "hello", sig));
  EXPECT_FALSE(Ed25519Verify(kp.public_key, "hellO", sig));
  EXPECT_FALSE(Ed25519Verify(kp.public_key.substr(1), "hello", sig));
  EXPECT_EQ(Base64Decode(Base64Encode(kp.public_key)).value(), kp.public_key);
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_EQ(Base64Decode("YWI=").value(), "ab");
  EXPECT_FALSE(Base64Decode("YW=I").has_value());
  EXPECT_FALSE(Base64Decode("YWI").has_value());
  EXPECT_FALSE(Base64Decode("Y?I=").has_value());
}

TEST(Ed25519, MatchesRfc8032TestVector1) {
  // RFC 8032 section 7.1, TEST 1 (empty message).
  auto hex = [](std::string_view h) {
    std::string out;
    for (size_t i = 0; i < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return out;
  };
  std::string seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  std::string pub = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  EXPECT_EQ(Ed25519PublicKey(seed).value(), pub);
  EXPECT_EQ(Ed25519Sign(seed, "").value(),
            hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
                "d25bf5f0595bbe24655141438e7a100b"));
}

TEST_F(PushSignatureTest, GoodPushVerifies) {
  PushVerifier v = Verifier({current_.public_key});
  Headers h = Signed(current_.seed);
  PushRefusal why{};
  auto e = v.Verify(Lookup(h), kBody, &why);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e.value().pod, "shop/web-1");
  EXPECT_FALSE(e.value().reset);
}

TEST_F(PushSignatureTest, WrongKeyIsABadSignature) {
  PushVerifier v = Verifier({current_.public_key});
  Headers h = Signed(next_.seed);
  PushRefusal why{};
  EXPECT_FALSE(v.Verify(Lookup(h), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kBadSignature);
}

TEST_F(PushSignatureTest, TamperedBodyOrEnvelopeIsABadSignature) {
  PushVerifier v = Verifier({current_.public_key});
  PushRefusal why{};
  Headers h = Signed(current_.seed);
  EXPECT_FALSE(v.Verify(Lookup(h), R"({"epoch":18446744073709551615,"version":2,"pools":[]})", &why).ok());
  EXPECT_EQ(why, PushRefusal::kBadSignature);
  Headers reset = Signed(current_.seed);
  reset[kResetHeader] = "1";  // the reset flag is signed: it cannot be added to a normal push
  EXPECT_FALSE(v.Verify(Lookup(reset), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kBadSignature);
  Headers later = Signed(current_.seed);
  later[kTimestampHeader] = std::to_string(sign_at_ + 1);
  EXPECT_FALSE(v.Verify(Lookup(later), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kBadSignature);
}

TEST_F(PushSignatureTest, UnsignedIsRefusedOnTheHead) {
  PushVerifier v = Verifier({current_.public_key});
  Headers h = Signed(current_.seed);
  h.erase(kSignatureHeader);
  EXPECT_EQ(v.CheckHead(Lookup(h)), PushRefusal::kUnsigned);
  PushRefusal why{};
  EXPECT_FALSE(v.Verify(Lookup(h), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kUnsigned);
  EXPECT_EQ(v.CheckHead(Lookup(Headers{})), PushRefusal::kUnsigned);
}

TEST_F(PushSignatureTest, PushForAnotherPodIsRefused) {
  PushVerifier v = Verifier({current_.public_key});
  PushRefusal why{};
  Headers other = Signed(current_.seed, "shop/web-2");
  EXPECT_EQ(v.CheckHead(Lookup(other)), PushRefusal::kWrongPod);
  EXPECT_FALSE(v.Verify(Lookup(other), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kWrongPod);
  // Same name, another incarnation (a StatefulSet pod re-created under the same name).
  Headers old_uid = Signed(current_.seed, "shop/web-1", "uid-0");
  EXPECT_FALSE(v.Verify(Lookup(old_uid), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kWrongPod);
  // Renaming the pod in the header breaks the signature.
  other[kPodHeader] = "shop/web-1";
  EXPECT_FALSE(v.Verify(Lookup(other), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kBadSignature);
}

TEST_F(PushSignatureTest, ReplayIsRefusedAndOnlyNewerTimestampsPass) {
  PushVerifier v = Verifier({current_.public_key});
  PushRefusal why{};
  Headers first = Signed(current_.seed);
  ASSERT_TRUE(v.Verify(Lookup(first), kBody, &why).ok());
  EXPECT_FALSE(v.Verify(Lookup(first), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kReplay);
  sign_at_ -= 1;
  Headers older = Signed(current_.seed);
  EXPECT_FALSE(v.Verify(Lookup(older), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kReplay);
  sign_at_ += 2;
  EXPECT_TRUE(v.Verify(Lookup(Signed(current_.seed)), kBody, &why).ok());
}

TEST_F(PushSignatureTest, TimestampOutsideTheSkewWindowIsRefused) {
  PushVerifier v = Verifier({current_.public_key});
  PushRefusal why{};
  sign_at_ = now_ - 60'001;
  EXPECT_FALSE(v.Verify(Lookup(Signed(current_.seed)), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kSkew);
  sign_at_ = now_ + 60'001;  // from the future: would otherwise block every push until then as a "replay"
  EXPECT_FALSE(v.Verify(Lookup(Signed(current_.seed)), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kSkew);
  sign_at_ = now_ - 59'000;
  EXPECT_TRUE(v.Verify(Lookup(Signed(current_.seed)), kBody, &why).ok());
}

TEST_F(PushSignatureTest, RotationCurrentToNextWithoutRestart) {
  // Injected with current and next: pushes signed by either verify, so the controller can switch keys.
  PushVerifier v = Verifier({current_.public_key, next_.public_key});
  PushRefusal why{};
  EXPECT_TRUE(v.Verify(Lookup(Signed(current_.seed)), kBody, &why).ok());
  ++sign_at_;
  EXPECT_TRUE(v.Verify(Lookup(Signed(next_.seed)), kBody, &why).ok());
  ++sign_at_;
  auto third = GenerateEd25519().value();  // two rotations later: this pod must be re-created
  EXPECT_FALSE(v.Verify(Lookup(Signed(third.seed)), kBody, &why).ok());
  EXPECT_EQ(why, PushRefusal::kBadSignature);
}

TEST_F(PushSignatureTest, SignedResetFlagIsReported) {
  PushVerifier v = Verifier({current_.public_key});
  PushRefusal why{};
  auto e = v.Verify(Lookup(Signed(current_.seed, "shop/web-1", "uid-1", true)), kBody, &why);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e.value().reset);
}

TEST(PublicKeys, ParsesCommaAndSpaceSeparatedBase64) {
  auto a = GenerateEd25519().value();
  auto b = GenerateEd25519().value();
  auto keys = ParsePublicKeys(Base64Encode(a.public_key) + ", " + Base64Encode(b.public_key) + "\n");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys.value(), (std::vector<std::string>{a.public_key, b.public_key}));
  EXPECT_FALSE(ParsePublicKeys("").ok());
  EXPECT_FALSE(ParsePublicKeys("YWI=").ok());
}

}  // namespace
}  // namespace memha::crypto
