#include "controller/kube/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace memha::kube {
namespace {

// What scripts/local-k8s writes (certificate data shortened to valid base64 of short text).
constexpr const char* kLocalK8s = R"(apiVersion: v1
kind: Config
clusters:
- name: memha-local
  cluster:
    server: https://127.0.0.1:41234
    certificate-authority-data: Q0EgUEVN
users:
- name: memha-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
contexts:
- name: memha-local
  context:
    cluster: memha-local
    user: memha-admin
current-context: memha-local
)";

// The shape kubectl writes (config view --raw), with a namespace, two contexts and a token user.
constexpr const char* kKubectl = R"(apiVersion: v1
clusters:
- cluster:
    insecure-skip-tls-verify: true
    server: https://kube.example:6443
  name: prod
- cluster:
    certificate-authority: certs/ca.pem
    server: http://127.0.0.1:8080
  name: dev
contexts:
- context:
    cluster: prod
    namespace: shop
    user: robot
  name: prod-ctx
- context:
    cluster: dev
    user: filer
  name: dev-ctx
current-context: prod-ctx
kind: Config
preferences: {}
users:
- name: robot
  user:
    token: "abc.def"
- name: filer
  user:
    tokenFile: token
    client-certificate: certs/client.pem
    client-key: /abs/key.pem
)";

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "kubeconfig_test_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_ + "/certs");
    std::ofstream(dir_ + "/certs/ca.pem") << "CA FILE";
    std::ofstream(dir_ + "/certs/client.pem") << "CERT FILE";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(KubeconfigTest, LocalK8sFormat) {
  auto c = ParseKubeconfig(kLocalK8s, dir_);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().server, "https://127.0.0.1:41234");
  EXPECT_EQ(c.value().ca_pem, "CA PEM");
  EXPECT_EQ(c.value().client_cert_pem, "CERT");
  EXPECT_EQ(c.value().client_key_pem, "KEY");
  EXPECT_EQ(c.value().default_namespace, "default");
  EXPECT_TRUE(c.value().token.empty());
  EXPECT_FALSE(c.value().insecure_skip_tls_verify);
}

TEST_F(KubeconfigTest, KubectlFormatCurrentContextWithToken) {
  auto c = ParseKubeconfig(kKubectl, dir_);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().server, "https://kube.example:6443");
  EXPECT_TRUE(c.value().insecure_skip_tls_verify);
  EXPECT_EQ(c.value().token, "abc.def");
  EXPECT_EQ(c.value().default_namespace, "shop");
  EXPECT_TRUE(c.value().ca_pem.empty());
}

TEST_F(KubeconfigTest, NamedContextWithFilesRelativeToTheKubeconfig) {
  // client-key is absolute and missing: a clear error naming the file.
  auto c = ParseKubeconfig(kKubectl, dir_, "dev-ctx");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/abs/key.pem"), std::string::npos);
  std::string text = kKubectl;
  text.replace(text.find("/abs/key.pem"), 12, "certs/client.pem");
  c = ParseKubeconfig(text, dir_, "dev-ctx");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().server, "http://127.0.0.1:8080");
  EXPECT_EQ(c.value().ca_pem, "CA FILE");
  EXPECT_EQ(c.value().client_cert_pem, "CERT FILE");
  EXPECT_EQ(c.value().token_file, dir_ + "/token");
}

TEST_F(KubeconfigTest, JsonKubeconfig) {
  const char* json = R"({"current-context":"c","contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}],
    "clusters":[{"name":"k","cluster":{"server":"https://h:1","certificate-authority-data":"Q0EgUEVN"}}],
    "users":[{"name":"u","user":{"token":"t"}}]})";
  auto c = ParseKubeconfig(json, dir_);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().server, "https://h:1");
  EXPECT_EQ(c.value().ca_pem, "CA PEM");
  EXPECT_EQ(c.value().token, "t");
}

TEST_F(KubeconfigTest, FileLoaderResolvesAgainstTheFilesDirectory) {
  std::string text = kKubectl;
  text.replace(text.find("/abs/key.pem"), 12, "certs/client.pem");
  std::ofstream(dir_ + "/config") << text;
  auto c = LoadKubeconfigFile(dir_ + "/config", "dev-ctx");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().ca_pem, "CA FILE");
  EXPECT_EQ(c.value().source, dir_ + "/config");
  EXPECT_FALSE(LoadKubeconfigFile(dir_ + "/missing").ok());
}

TEST_F(KubeconfigTest, ErrorsAreClear) {
  const std::pair<std::string, const char*> cases[] = {
      {"kind: Config\n", "no current-context"},
      {std::string(kLocalK8s) + "extra: 1\n---\nkind: Config\n", "several documents"},
      {"current-context: nope\ncontexts: []\n", "no entry named 'nope'"},
      {R"(current-context: c
contexts:
- name: c
  context: {cluster: k, user: u}
clusters:
- name: k
  cluster: {server: "https://h"}
users:
- name: u
  user:
    exec:
      command: aws
)",
       "'exec' authentication is not supported"},
      {R"(current-context: c
contexts:
- name: c
  context: {cluster: k, user: u}
clusters:
- name: k
  cluster: {server: "https://h"}
users:
- name: u
  user: {client-certificate-data: Q0VSVA==}
)",
       "both a client certificate and a client key"},
      {R"(current-context: c
contexts:
- name: c
  context: {cluster: k}
clusters:
- name: k
  cluster: {certificate-authority-data: "@@@"}
)",
       "no server"},
      {R"(current-context: c
contexts:
- name: c
  context: {cluster: k}
clusters:
- name: k
  cluster: {server: "https://h", certificate-authority-data: "@@@"}
)",
       "invalid base64"},
      {"{not json", "invalid JSON"},
  };
  for (const auto& [text, expected] : cases) {
    auto c = ParseKubeconfig(text, dir_);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find(expected), std::string::npos) << c.status().message();
  }
}

TEST_F(KubeconfigTest, InCluster) {
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  InClusterEnv ic;
  ic.getenv = [&](const char* n) { return env.count(n) ? env[n] : std::string(); };
  ic.service_account_dir = dir_;
  auto c = LoadInCluster(ic);
  EXPECT_FALSE(c.ok());  // no token file yet
  std::ofstream(dir_ + "/token") << "sa-token";
  std::ofstream(dir_ + "/ca.crt") << "CLUSTER CA";
  std::ofstream(dir_ + "/namespace") << "memha-system\n";
  c = LoadInCluster(ic);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c.value().server, "https://10.96.0.1:443");
  EXPECT_EQ(c.value().token_file, dir_ + "/token");
  EXPECT_EQ(c.value().ca_pem, "CLUSTER CA");
  EXPECT_EQ(c.value().default_namespace, "memha-system");
  env["KUBERNETES_SERVICE_HOST"] = "fd00::1";
  EXPECT_EQ(LoadInCluster(ic).value().server, "https://[fd00::1]:443");
  env.erase("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(LoadInCluster(ic).status().code(), Status::Code::kNotFound);
}

TEST(Base64, Decodes) {
  EXPECT_EQ(DecodeBase64("aGVsbG8=").value(), "hello");
  EXPECT_EQ(DecodeBase64("aGVs\nbG8").value(), "hello");
  EXPECT_EQ(DecodeBase64("").value(), "");
  EXPECT_FALSE(DecodeBase64("a").ok());
  EXPECT_FALSE(DecodeBase64("a$==").ok());
}

}  // namespace
}  // namespace memha::kube
