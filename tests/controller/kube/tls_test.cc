// HttpKubeApi over TLS against a loopback httplib::SSLServer that requires client certificates: CA
// verification (incl. the server's IP/name), client certificate authentication, insecure-skip-tls-verify.
// Certificates are generated with the openssl command line at suite start.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "controller/kube/config.h"
#include "controller/kube/http_api.h"

namespace memha::kube {
namespace {

std::string g_dir;

std::string Read(const std::string& name) { return ReadFile(g_dir + "/" + name).value(); }

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_dir = ::testing::TempDir() + "kube_tls_" + std::to_string(::getpid());
    std::filesystem::create_directories(g_dir);
    std::string script = "cd '" + g_dir + R"(' && set -e
ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
ec ca.key; openssl req -x509 -new -key ca.key -subj /CN=test-ca -days 2 -out ca.crt 2>/dev/null
ec other.key; openssl req -x509 -new -key other.key -subj /CN=other-ca -days 2 -out other.crt 2>/dev/null
ec server.key; openssl req -new -key server.key -subj /CN=kube-apiserver -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
ec client.key; openssl req -new -key client.key -subj /CN=memha/O=system:masters -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt 2>/dev/null
)";
    std::ofstream(g_dir + "/gen.sh") << script;
    ASSERT_EQ(std::system(("bash '" + g_dir + "/gen.sh'").c_str()), 0) << "openssl failed";
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(g_dir); }

  void SetUp() override {
    server_ = std::make_unique<httplib::SSLServer>((g_dir + "/server.crt").c_str(), (g_dir + "/server.key").c_str(),
                                                   (g_dir + "/ca.crt").c_str());
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/version", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"gitVersion":"test"})", "application/json");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  KubeConfig Config() {
    KubeConfig c;
    c.server = "https://127.0.0.1:" + std::to_string(port_);
    c.ca_pem = Read("ca.crt");
    c.client_cert_pem = Read("client.crt");
    c.client_key_pem = Read("client.key");
    return c;
  }
  Result<ApiResponse> Get(const KubeConfig& c) {
    auto api = HttpKubeApi::Create(c);
    if (!api.ok()) return api.status();
    return api.value()->Request("GET", "/version");
  }

  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(TlsTest, VerifiedServerAndClientCertificate) {
  auto r = Get(Config());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value().status, 200);
  EXPECT_EQ(r.value().body, R"({"gitVersion":"test"})");
}

TEST_F(TlsTest, WrongCaIsRefused) {
  KubeConfig c = Config();
  c.ca_pem = Read("other.crt");
  EXPECT_FALSE(Get(c).ok());
}

TEST_F(TlsTest, InsecureSkipVerifyAcceptsAnyServer) {
  KubeConfig c = Config();
  c.ca_pem = Read("other.crt");
  c.insecure_skip_tls_verify = true;
  auto r = Get(c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value().status, 200);
}

TEST_F(TlsTest, NameNotInTheCertificateIsRefused) {
  KubeConfig c = Config();
  c.server = "https://localhost:" + std::to_string(port_);  // the certificate names only IP 127.0.0.1
  EXPECT_FALSE(Get(c).ok());
}

TEST_F(TlsTest, ServerRequiringClientCertificatesRefusesUsWithoutOne) {
  KubeConfig c = Config();
  c.client_cert_pem.clear();
  c.client_key_pem.clear();
  c.token = "t";
  EXPECT_FALSE(Get(c).ok());
}

TEST_F(TlsTest, MismatchedCertificateAndKeyFailAtCreate) {
  KubeConfig c = Config();
  c.client_key_pem = Read("other.key");
  EXPECT_FALSE(HttpKubeApi::Create(c).ok());
}

}  // namespace
}  // namespace memha::kube
