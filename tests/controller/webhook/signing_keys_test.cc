// The push-signing keys: created once in the controller's namespace (a racing replica reads the winner's), `next`
// made again after a rotation removed it, read from a file; the public keys the webhook injects.
#include "controller/webhook/signing_keys.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "common/crypto/ed25519.h"
#include "tests/controller/webhook/fake_kube.h"

namespace memha::webhook {
namespace {

using nlohmann::json;
const std::string kPath = "/api/v1/namespaces/memha-system/secrets/memha-push-signing-key";

TEST(SigningKeys, CreatedOnceAndReadByTheOtherReplica) {
  testing::FakeKube api;
  auto first = LoadOrCreateSigningKeys(api, "memha-system", "memha-push-signing-key");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first.value().current.size(), 32u);
  EXPECT_EQ(first.value().next.size(), 32u);
  EXPECT_NE(first.value().current, first.value().next);
  auto second = LoadOrCreateSigningKeys(api, "memha-system", "memha-push-signing-key");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value(), first.value());
  ASSERT_EQ(first.value().PublicKeys().size(), 2u);
  EXPECT_EQ(first.value().PublicKeys()[0],
            crypto::Base64Encode(crypto::Ed25519PublicKey(first.value().current).value()));
}

TEST(SigningKeys, RotationPromotesNextAndANewNextIsMade) {
  testing::FakeKube api;
  auto before = LoadOrCreateSigningKeys(api, "memha-system", "memha-push-signing-key").value();
  // The operator's step: current := next, next removed (docs/DEPLOY.md).
  json secret = *api.Get(kPath);
  secret["data"]["current"] = secret["data"]["next"];
  secret["data"].erase("next");
  api.Put(kPath, secret);
  auto after = LoadOrCreateSigningKeys(api, "memha-system", "memha-push-signing-key");
  ASSERT_TRUE(after.ok()) << after.status().message();
  EXPECT_EQ(after.value().current, before.next);
  EXPECT_EQ(after.value().next.size(), 32u);
  EXPECT_NE(after.value().next, before.current);
  EXPECT_EQ(LoadOrCreateSigningKeys(api, "memha-system", "memha-push-signing-key").value(), after.value());
}

TEST(SigningKeys, BrokenSecretIsAnErrorNotANewKey) {
  testing::FakeKube api;
  api.Put(kPath, json{{"metadata", {{"name", "memha-push-signing-key"}}}, {"data", {{"current", "bm90IGEga2V5"}}}});
  EXPECT_FALSE(LoadOrCreateSigningKeys(api, "memha-system", "memha-push-signing-key").ok());
}

TEST(SigningKeys, FromAFile) {
  auto a = crypto::GenerateEd25519().value();
  auto b = crypto::GenerateEd25519().value();
  std::string path = ::testing::TempDir() + "/signing-keys";
  {
    std::ofstream out(path);
    out << "current: " << crypto::Base64Encode(a.seed) << "\nnext: " << crypto::Base64Encode(b.seed) << "\n";
  }
  auto keys = LoadSigningKeysFile(path);
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_EQ(keys.value().current, a.seed);
  EXPECT_EQ(keys.value().next, b.seed);
  {
    std::ofstream out(path);
    out << "next: " << crypto::Base64Encode(b.seed) << "\n";
  }
  EXPECT_FALSE(LoadSigningKeysFile(path).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace memha::webhook
