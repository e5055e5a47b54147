#include "controller/webhook/token_secret.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "controller/webhook/base64.h"
#include "tests/controller/webhook/fake_kube.h"

namespace memha::webhook {
namespace {

using nlohmann::json;
using testing::FakeKube;

constexpr const char* kPath = "/api/v1/namespaces/shop/secrets/memha-sidecar-token";

class TokenSecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("memha-token-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    WriteToken("s3cret-token\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void WriteToken(const std::string& t) { std::ofstream(dir_ / "token") << t; }
  SidecarTokenSecrets Make() {
    return SidecarTokenSecrets(api_, FileTokenSource((dir_ / "token").string()), {}, [this] { return now_; });
  }
  std::string StoredToken() {
    auto s = api_.Get(kPath);
    return s ? Base64Decode((*s)["data"]["token"].get<std::string>()).value_or("?") : "<none>";
  }

  FakeKube api_;
  std::filesystem::path dir_;
  std::chrono::steady_clock::time_point now_{};
};

TEST_F(TokenSecretsTest, CreatesTheSecretWhenMissing) {
  auto secrets = Make();
  ASSERT_TRUE(secrets.Ensure("shop").ok());
  EXPECT_EQ(StoredToken(), "s3cret-token\n");  // byte for byte what the controller's file holds
  auto s = api_.Get(kPath);
  EXPECT_EQ((*s)["metadata"]["labels"]["app.kubernetes.io/managed-by"], "memha-controller");
  EXPECT_EQ((*s)["type"], "Opaque");
}

TEST_F(TokenSecretsTest, NoWriteWhenTheTokenIsAlreadyThere) {
  api_.Put(kPath, json::parse(SidecarTokenSecrets::SecretJson("shop", "memha-sidecar-token", "s3cret-token\n")));
  auto secrets = Make();
  ASSERT_TRUE(secrets.Ensure("shop").ok());
  EXPECT_EQ(api_.Writes(), 0u);
}

TEST_F(TokenSecretsTest, RecentlyCheckedNamespaceCostsNoRequestUntilTheTtlPasses) {
  auto secrets = Make();
  ASSERT_TRUE(secrets.Ensure("shop").ok());
  const size_t after_first = api_.calls().size();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(secrets.Ensure("shop").ok());
  EXPECT_EQ(api_.calls().size(), after_first);
  now_ += std::chrono::seconds(31);
  ASSERT_TRUE(secrets.Ensure("shop").ok());
  EXPECT_EQ(api_.calls().size(), after_first + 1);  // one GET, no write
}

TEST_F(TokenSecretsTest, RotatedTokenReplacesOurSecretAtOnce) {
  auto secrets = Make();
  ASSERT_TRUE(secrets.Ensure("shop").ok());
  WriteToken("rotated");
  ASSERT_TRUE(secrets.Ensure("shop").ok());  // within the TTL: the token changed, so the cache does not apply
  EXPECT_EQ(StoredToken(), "rotated");
  auto calls = api_.calls();
  EXPECT_EQ(calls.back().method, "PUT");
  EXPECT_NE(json::parse(calls.back().body)["metadata"].value("resourceVersion", ""), "");
}

TEST_F(TokenSecretsTest, WithoutUpdateExistingACopyWithAnotherTokenIsLeftAsItIs) {
  // The webhook's instance: a replica that has not yet read the rotated token must not write the old one back.
  api_.Put(kPath, json::parse(SidecarTokenSecrets::SecretJson("shop", "memha-sidecar-token", "rotated-by-leader")));
  SidecarTokenSecrets secrets(api_, FileTokenSource((dir_ / "token").string()), {.update_existing = false},
                              [this] { return now_; });
  ASSERT_TRUE(secrets.Ensure("shop").ok());  // the pod is admitted; its copy exists
  EXPECT_EQ(StoredToken(), "rotated-by-leader");
  EXPECT_EQ(api_.Writes(), 0u);
  // A missing copy is still created.
  ASSERT_TRUE(secrets.Ensure("blog").ok());
  EXPECT_NE(api_.Get("/api/v1/namespaces/blog/secrets/memha-sidecar-token"), std::nullopt);
}

TEST_F(TokenSecretsTest, ASecretSomeoneElseOwnsIsLeftAlone) {
  json foreign = json::parse(SidecarTokenSecrets::SecretJson("shop", "memha-sidecar-token", "theirs"));
  foreign["metadata"]["labels"] = json::object();
  api_.Put(kPath, foreign);
  auto secrets = Make();
  Status s = secrets.Ensure("shop");
  EXPECT_EQ(s.code(), Status::Code::kConflict);
  EXPECT_NE(s.message().find("not managed by memha"), std::string::npos);
  EXPECT_EQ(StoredToken(), "theirs");
}

TEST_F(TokenSecretsTest, CreateRaceWithTheOtherReplicaReadsTheWinner) {
  bool raced = false;
  api_.intercept = [&](const testing::Call& c) -> std::optional<kube::ApiResponse> {
    if (c.method == "POST" && !raced) {
      raced = true;  // the other replica creates it first, with the same token
      api_.Put(kPath, json::parse(SidecarTokenSecrets::SecretJson("shop", "memha-sidecar-token", "s3cret-token\n")));
      return FakeKube::Answer(409, "already exists");
    }
    return std::nullopt;
  };
  auto secrets = Make();
  ASSERT_TRUE(secrets.Ensure("shop").ok());
  EXPECT_TRUE(raced);
  EXPECT_EQ(api_.calls().back().method, "GET");
}

TEST_F(TokenSecretsTest, ApiErrorsAreReportedAndNotCached) {
  int forbidden = 1;
  api_.intercept = [&](const testing::Call&) -> std::optional<kube::ApiResponse> {
    if (forbidden-- > 0) return FakeKube::Answer(403, "secrets is forbidden");
    return std::nullopt;
  };
  auto secrets = Make();
  Status s = secrets.Ensure("shop");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("403"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("forbidden"), std::string::npos) << s.message();
  EXPECT_TRUE(secrets.Ensure("shop").ok());
}

TEST_F(TokenSecretsTest, TransportErrorAndBadInputs) {
  api_.intercept = [](const testing::Call&) -> std::optional<kube::ApiResponse> { return std::nullopt; };
  auto secrets = Make();
  EXPECT_EQ(secrets.Ensure("../kube-system").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(secrets.Ensure("").code(), Status::Code::kInvalidArgument);
  WriteToken("\n");
  EXPECT_EQ(secrets.Ensure("shop").code(), Status::Code::kUnavailable);
  std::filesystem::remove(dir_ / "token");
  EXPECT_EQ(secrets.Ensure("shop").code(), Status::Code::kUnavailable);
  EXPECT_TRUE(api_.calls().empty());
}

TEST(SharedToken, CreatedOnceRandomAndReadByTheSecondReplica) {
  FakeKube api;
  auto a = LoadOrCreateSharedToken(api, "memha-system");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a.value().size(), 44u);  // 32 random bytes, base64
  EXPECT_EQ(a.value().find_first_of("+/"), std::string::npos);
  auto b = LoadOrCreateSharedToken(api, "memha-system");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value(), a.value());
  FakeKube other;
  EXPECT_NE(LoadOrCreateSharedToken(other, "memha-system").value(), a.value());
}

TEST(SharedToken, CreateRaceReadsTheWinnersToken) {
  FakeKube api;
  bool raced = false;
  api.intercept = [&](const testing::Call& c) -> std::optional<kube::ApiResponse> {
    if (c.method == "POST" && !raced) {
      raced = true;
      api.Put("/api/v1/namespaces/memha-system/secrets/memha-sidecar-token",
              json::parse(SidecarTokenSecrets::SecretJson("memha-system", "memha-sidecar-token", "winner")));
      return FakeKube::Answer(409, "already exists");
    }
    return std::nullopt;
  };
  auto got = LoadOrCreateSharedToken(api, "memha-system");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got.value(), "winner");
}

TEST(SharedToken, UnusableSecretOrApiErrorIsAStatus) {
  FakeKube api;
  api.Put("/api/v1/namespaces/memha-system/secrets/memha-sidecar-token", {{"metadata", json::object()}, {"data", json::object()}});
  EXPECT_EQ(LoadOrCreateSharedToken(api, "memha-system").status().code(), Status::Code::kInvalidArgument);
  FakeKube denied;
  denied.intercept = [](const testing::Call&) -> std::optional<kube::ApiResponse> { return FakeKube::Answer(403, "forbidden"); };
  EXPECT_EQ(LoadOrCreateSharedToken(denied, "memha-system").status().code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace memha::webhook
