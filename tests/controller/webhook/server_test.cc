#include "controller/webhook/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/pem.h>

#include <filesystem>
#include <mutex>
#include <thread>
#include <fstream>
#include <sstream>

#include "controller/webhook/base64.h"

namespace memha::webhook {
namespace {

using nlohmann::json;

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Testdata(const std::string& name) { return ReadFile(std::filesystem::path(MEMHA_WEBHOOK_TESTDATA) / name); }

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = GenerateServingCertificate({"localhost"}, {"127.0.0.1"}, std::chrono::hours(24));
    ASSERT_TRUE(cert.ok());
    tls_ = cert.value();
    InjectConfig config;
    config.image = "registry.example/memha:test";
    server_ = std::make_unique<WebhookServer>(WebhookServer::Options{"127.0.0.1", 0}, tls_, config,
                                              [this](const AdmissionResult& r) { observed_.push_back(r.decision); });
    server_->SetNotInjectedSink([this](const AdmissionResult& r) {
      std::lock_guard lock(sink_mu_);
      not_injected_.push_back(r.pod_name + ":" + std::string(DecisionName(r.decision)));
    });
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_GT(server_->port(), 0);
  }
  void TearDown() override { server_->Stop(); }

  // An HTTPS client that trusts only the generated CA (or `ca_pem`) and checks the host name, as the apiserver does.
  httplib::Result Post(const std::string& body, const std::string& ca_pem = "") {
    const std::string& ca_text = ca_pem.empty() ? tls_.ca_pem : ca_pem;
    httplib::SSLClient client("127.0.0.1", server_->port());
    BIO* bio = BIO_new_mem_buf(ca_text.data(), static_cast<int>(ca_text.size()));
    X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_free(ca);
    client.set_ca_cert_store(store);  // the client owns it now
    client.enable_server_certificate_verification(true);
    client.set_connection_timeout(5, 0);
    client.set_read_timeout(10, 0);
    return client.Post("/mutate", body, "application/json");
  }

  ServingCertificate tls_;
  std::mutex sink_mu_;
  std::vector<std::string> not_injected_;  // sink_mu_
  std::unique_ptr<WebhookServer> server_;
  std::vector<Decision> observed_;
};

TEST_F(WebhookServerTest, InjectsOverTlsWithTheProjectedTokenAndNoSecret) {
  auto res = Post(Testdata("inject_label_true.json"));
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  const json review = json::parse(res->body);
  EXPECT_EQ(review["response"]["allowed"], true);
  EXPECT_EQ(review["response"]["patchType"], "JSONPatch");
  // The sidecar's identity is the pod's own projected ServiceAccount token: no Secret anywhere (the server has no
  // API client at all), and the token cannot be used against the API server (audience memha).
  json patched;
  for (const json& op : json::parse(Base64Decode(review["response"]["patch"].get<std::string>()).value_or("[]"))) {
    if (op["path"] == "/spec/volumes") patched = op["value"];
  }
  ASSERT_TRUE(patched.is_array()) << review.dump();
  EXPECT_EQ(patched[0]["name"], "memha-token");
  EXPECT_EQ(patched[0]["projected"]["sources"][0]["serviceAccountToken"],
            json({{"audience", "memha"}, {"expirationSeconds", 600}, {"path", "token"}}));
  EXPECT_EQ(patched.dump().find("secret"), std::string::npos) << patched.dump();
  EXPECT_EQ(observed_, std::vector<Decision>{Decision::kInjected});
}

TEST_F(WebhookServerTest, AReloadedCertificateServesTheNextHandshakeWithoutARestart) {
  ASSERT_TRUE(Post(Testdata("opt_out.json")));
  auto next = GenerateServingCertificate({"localhost"}, {"127.0.0.1"}, std::chrono::hours(24));
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(server_->Reload(next.value()).ok());
  auto with_new_ca = Post(Testdata("opt_out.json"), next.value().ca_pem);
  ASSERT_TRUE(with_new_ca) << httplib::to_string(with_new_ca.error());
  EXPECT_EQ(with_new_ca->status, 200);
  EXPECT_FALSE(Post(Testdata("opt_out.json")));  // the old CA no longer verifies what is served
  EXPECT_EQ(server_->Serving().cert_pem, next.value().cert_pem);
  // A certificate whose key does not match is refused, and the served one stays.
  ServingCertificate broken = next.value();
  broken.key_pem = tls_.key_pem;
  EXPECT_FALSE(server_->Reload(broken).ok());
  EXPECT_TRUE(Post(Testdata("opt_out.json"), next.value().ca_pem));
}

TEST_F(WebhookServerTest, PodsNotInjectedForACauseReachTheEventSinkDryRunsDoNot) {
  for (const char* f : {"port_collision.json", "opt_out.json", "inject_label_true.json", "dry_run.json"}) {
    ASSERT_TRUE(Post(Testdata(f))) << f;
  }
  json dry = json::parse(Testdata("port_collision.json"));
  dry["request"]["dryRun"] = true;
  ASSERT_TRUE(Post(dry.dump()));
  std::vector<std::string> got;
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(sink_mu_);
      got = not_injected_;
    }
    if (!got.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // nothing else arrives
  std::lock_guard lock(sink_mu_);
  ASSERT_EQ(not_injected_.size(), 1u);
  EXPECT_NE(not_injected_[0].find("unsupported_pod"), std::string::npos) << not_injected_[0];
}

TEST_F(WebhookServerTest, DryRunGetsTheSamePatch) {
  auto res = Post(Testdata("dry_run.json"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(json::parse(res->body)["response"].contains("patch"));
}

TEST_F(WebhookServerTest, NotInjectedPodsAreNotPatched) {
  for (const char* f : {"opt_out.json", "no_pools_annotation.json", "update_operation.json"}) {
    auto res = Post(Testdata(f));
    ASSERT_TRUE(res) << f;
    EXPECT_EQ(res->status, 200) << f;
    EXPECT_FALSE(json::parse(res->body)["response"].contains("patch")) << f;
  }
}

TEST_F(WebhookServerTest, BadRequestIs400AndTheServerKeepsServing) {
  auto bad = Post("{definitely not json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(json::parse(bad->body).value("error", "").find("invalid JSON"), std::string::npos);
  auto good = Post(Testdata("opt_out.json"));
  ASSERT_TRUE(good);
  EXPECT_EQ(good->status, 200);
}

TEST(WebhookServer, UnusableCertificateOrConfigFailsToStart) {
  ServingCertificate broken{"", "not a cert", "not a key"};
  WebhookServer a(WebhookServer::Options{"127.0.0.1", 0}, broken, InjectConfig{}, nullptr);
  EXPECT_FALSE(a.Start().ok());
  auto cert = GenerateServingCertificate({"localhost"}, {}, std::chrono::hours(1));
  ASSERT_TRUE(cert.ok());
  InjectConfig bad_config;
  bad_config.image = "";
  WebhookServer b(WebhookServer::Options{"127.0.0.1", 0}, cert.value(), bad_config, nullptr);
  EXPECT_FALSE(b.Start().ok());
}

}  // namespace
}  // namespace memha::webhook
