#include "controller/webhook/certificates.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "controller/webhook/base64.h"
#include "controller/webhook/ca_sync.h"
#include "tests/controller/webhook/fake_kube.h"

namespace memha::webhook {
namespace {

using nlohmann::json;
using testing::FakeKube;

constexpr const char* kSecret = "/api/v1/namespaces/memha-system/secrets/memha-webhook-tls";
constexpr const char* kConfig = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/memha-sidecar-injector";

// The SAN entries of a PEM certificate, as "DNS:x" / "IP:y".
std::vector<std::string> SubjectAltNames(const std::string& pem) {
  std::vector<std::string> out;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                         static_cast<size_t>(ASN1_STRING_length(n->d.dNSName))));
    } else if (n->type == GEN_IPADD && ASN1_STRING_length(n->d.iPAddress) == 4) {
      const unsigned char* ip = ASN1_STRING_get0_data(n->d.iPAddress);
      out.push_back("IP:" + std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." +
                    std::to_string(ip[3]));
    }
  }
  GENERAL_NAMES_free(names);
  X509_free(cert);
  return out;
}

TEST(Certificates, ServiceDnsNames) {
  EXPECT_EQ(ServiceDnsNames("memha-controller", "memha-system"),
            (std::vector<std::string>{"memha-controller", "memha-controller.memha-system",
                                      "memha-controller.memha-system.svc",
                                      "memha-controller.memha-system.svc.cluster.local"}));
}

TEST(Certificates, GeneratedCertificateVerifiesAndCoversTheServiceNames) {
  const auto names = ServiceDnsNames("memha-controller", "memha-system");
  auto cert = GenerateServingCertificate(names, {"127.0.0.1"}, std::chrono::hours(24 * 365));
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_NE(cert.value().ca_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_NE(cert.value().key_pem.find("PRIVATE KEY"), std::string::npos);
  Status ok = VerifyServingCertificate(cert.value(), names, {"127.0.0.1"}, std::chrono::hours(24 * 300));
  EXPECT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(SubjectAltNames(cert.value().cert_pem),
            (std::vector<std::string>{"DNS:memha-controller", "DNS:memha-controller.memha-system",
                                      "DNS:memha-controller.memha-system.svc",
                                      "DNS:memha-controller.memha-system.svc.cluster.local", "IP:127.0.0.1"}));
  // The CA itself is not a serving certificate for these names.
  EXPECT_TRUE(SubjectAltNames(cert.value().ca_pem).empty());
}

TEST(Certificates, VerifyRejectsWhatTheApiserverWouldReject) {
  const std::vector<std::string> names = {"memha-controller.memha-system.svc"};
  auto a = GenerateServingCertificate(names, {}, std::chrono::hours(48));
  auto b = GenerateServingCertificate(names, {}, std::chrono::hours(48));
  ASSERT_TRUE(a.ok() && b.ok());
  const auto day = std::chrono::hours(24);
  EXPECT_TRUE(VerifyServingCertificate(a.value(), names, {}, day).ok());
  auto why = [&](ServingCertificate c, std::vector<std::string> n, std::vector<std::string> ips, std::chrono::seconds min) {
    Status s = VerifyServingCertificate(c, n, ips, min);
    EXPECT_FALSE(s.ok());
    return s.message();
  };
  EXPECT_NE(why(a.value(), {"other.memha-system.svc"}, {}, day).find("DNS name other"), std::string::npos);
  EXPECT_NE(why(a.value(), names, {"10.0.0.9"}, day).find("IP address"), std::string::npos);
  EXPECT_NE(why(a.value(), names, {}, std::chrono::hours(24 * 3)).find("expires"), std::string::npos);
  EXPECT_NE(why({b.value().ca_pem, a.value().cert_pem, a.value().key_pem}, names, {}, day).find("does not verify"),
            std::string::npos);
  EXPECT_NE(why({a.value().ca_pem, a.value().cert_pem, b.value().key_pem}, names, {}, day).find("does not match"),
            std::string::npos);
  EXPECT_NE(why({"", a.value().cert_pem, a.value().key_pem}, names, {}, day).find("parse"), std::string::npos);
  EXPECT_FALSE(GenerateServingCertificate({}, {}, day).ok());
}

CertificateOptions Options() {
  CertificateOptions o;
  o.ns = "memha-system";
  return o;
}

ServingCertificate StoredCert(FakeKube& api) {
  auto s = api.Get(kSecret);
  if (!s) return {};
  auto field = [&](const char* k) { return Base64Decode((*s)["data"][k].get<std::string>()).value_or(""); };
  return {field("ca.crt"), field("tls.crt"), field("tls.key")};
}

TEST(CertificateBootstrap, CreatesTheSecretOnceAndTheSecondReplicaReusesIt) {
  FakeKube api;
  CertificateBootstrap first(api, Options());
  auto a = first.LoadOrCreate();
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ((*api.Get(kSecret))["type"], "kubernetes.io/tls");
  EXPECT_EQ(StoredCert(api).cert_pem, a.value().cert_pem);
  const size_t writes = api.Writes();
  CertificateBootstrap second(api, Options());
  auto b = second.LoadOrCreate();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().cert_pem, a.value().cert_pem);
  EXPECT_EQ(b.value().key_pem, a.value().key_pem);
  EXPECT_EQ(api.Writes(), writes);
}

TEST(CertificateBootstrap, LosingTheCreateRaceServesTheWinnersCertificate) {
  FakeKube api;
  ServingCertificate winner;
  bool other_running = false;
  api.intercept = [&](const testing::Call& c) -> std::optional<kube::ApiResponse> {
    if (c.method == "POST" && winner.cert_pem.empty() && !other_running) {
      other_running = true;  // the other replica's calls go straight through
      winner = CertificateBootstrap(api, Options()).LoadOrCreate().value();
      other_running = false;
      return FakeKube::Answer(409, "already exists");
    }
    return std::nullopt;
  };
  CertificateBootstrap me(api, Options());
  auto got = me.LoadOrCreate();
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got.value().cert_pem, winner.cert_pem);
}

TEST(CertificateBootstrap, ReplacesAStoredCertificateThatDoesNotFit) {
  FakeKube api;
  CertificateOptions other = Options();
  other.service_name = "old-name";
  ASSERT_TRUE(CertificateBootstrap(api, other).LoadOrCreate().ok());
  const std::string old_rv = (*api.Get(kSecret))["metadata"]["resourceVersion"];
  auto got = CertificateBootstrap(api, Options()).LoadOrCreate();
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(VerifyServingCertificate(got.value(), ServiceDnsNames("memha-controller", "memha-system"), {},
                                       std::chrono::hours(24)).ok());
  EXPECT_EQ(StoredCert(api).cert_pem, got.value().cert_pem);
  EXPECT_EQ(api.calls().back().method, "PUT");
  EXPECT_NE((*api.Get(kSecret))["metadata"]["resourceVersion"], old_rv);
}

TEST(CertificateBootstrap, GarbageInTheSecretIsReplaced) {
  FakeKube api;
  api.Put(kSecret, {{"metadata", {{"name", "memha-webhook-tls"}}}, {"data", {{"tls.crt", "!!"}}}});
  auto got = CertificateBootstrap(api, Options()).LoadOrCreate();
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(StoredCert(api).key_pem, got.value().key_pem);
}

json WebhookConfig(const std::string& bundle0) {
  json hook = {{"name", "pods.inject.memha.io"}, {"clientConfig", {{"service", {{"name", "memha-controller"}}}}}};
  json hook2 = hook;
  hook2["name"] = "namespace.inject.memha.io";
  if (!bundle0.empty()) hook["clientConfig"]["caBundle"] = bundle0;
  return {{"metadata", {{"name", "memha-sidecar-injector"}}}, {"webhooks", {hook, hook2}}};
}

TEST(CertificateBootstrap, PatchesEveryCaBundleOnlyWhenItDiffers) {
  FakeKube api;
  api.Put(kConfig, WebhookConfig(""));
  CertificateBootstrap boot(api, Options());
  auto cert = boot.Run();
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  json config = *api.Get(kConfig);
  for (const auto& hook : config["webhooks"]) {
    EXPECT_EQ(Base64Decode(hook["clientConfig"]["caBundle"].get<std::string>()), cert.value().ca_pem);
    EXPECT_EQ(hook["clientConfig"]["service"]["name"], "memha-controller");  // the rest is untouched
  }
  const size_t writes = api.Writes();
  ASSERT_TRUE(boot.EnsureCaBundle(cert.value().ca_pem).ok());
  EXPECT_EQ(api.Writes(), writes);  // nothing to do: no PATCH
  // A re-applied manifest blanked one of them: the next check restores it.
  config["webhooks"][1]["clientConfig"].erase("caBundle");
  api.Put(kConfig, config);
  ASSERT_TRUE(boot.EnsureCaBundle(cert.value().ca_pem).ok());
  EXPECT_EQ(Base64Decode((*api.Get(kConfig))["webhooks"][1]["clientConfig"]["caBundle"].get<std::string>()),
            cert.value().ca_pem);
}

// Issue 12: two replicas that loaded different CAs (the Secret was replaced between their starts) used to rewrite
// caBundle with their own CA every minute, in turn; pods were then refused by one of them, and under
// failurePolicy Ignore created without the sidecar. Now one round converges both on the Secret's certificate,
// the follower never writes, and only the leader's CA is ever in the caBundle.
TEST(WebhookCaSync, TwoReplicasWithDifferentCasConvergeOnTheSecretAndOnlyTheLeaderWrites) {
  FakeKube api;
  api.Put(kConfig, WebhookConfig(""));
  CertificateBootstrap boot(api, Options());
  auto a = boot.LoadOrCreate();  // replica 1 started with A
  ASSERT_TRUE(a.ok());
  auto b = GenerateServingCertificate(boot.DnsNames(), {}, std::chrono::hours(24 * 365));  // replica 2's, stored
  ASSERT_TRUE(b.ok());
  json secret = *api.Get(kSecret);
  secret["data"] = {{"ca.crt", Base64Encode(b.value().ca_pem)}, {"tls.crt", Base64Encode(b.value().cert_pem)},
                    {"tls.key", Base64Encode(b.value().key_pem)}};
  api.Put(kSecret, secret);

  struct Replica {
    ServingCertificate serving;
    bool leading = false;
    int reloads = 0;
  } r1{a.value(), true}, r2{b.value(), false};
  auto sync_for = [&boot](Replica& r) {
    return WebhookCaSync(boot, {[&r] { return r.leading; }, [&r] { return r.serving; },
                                [&r](const ServingCertificate& t) {
                                  r.serving = t;
                                  ++r.reloads;
                                  return Status::Ok();
                                }});
  };
  // The follower fills the empty caBundle with the Secret's CA (B, what it serves), nothing else.
  ASSERT_TRUE(sync_for(r2).Once().ok());
  EXPECT_EQ(r2.reloads, 0);
  {
    const json filled = *api.Get(kConfig);
    for (const auto& hook : filled["webhooks"]) {
      EXPECT_EQ(Base64Decode(hook["clientConfig"]["caBundle"].get<std::string>()), b.value().ca_pem);
    }
  }
  // A caBundle with another CA (A, replica 1's at start, as the old code wrote it): the follower leaves it.
  json stale = *api.Get(kConfig);
  for (auto& hook : stale["webhooks"]) hook["clientConfig"]["caBundle"] = Base64Encode(a.value().ca_pem);
  api.Put(kConfig, stale);
  const size_t before = api.Writes();
  ASSERT_TRUE(sync_for(r2).Once().ok());
  EXPECT_EQ(api.Writes(), before);
  ASSERT_TRUE(sync_for(r1).Once().ok());  // the leader: reloads B, writes B's CA
  EXPECT_EQ(r1.serving.cert_pem, b.value().cert_pem);
  EXPECT_EQ(r1.reloads, 1);
  const json config = *api.Get(kConfig);
  for (const auto& hook : config["webhooks"]) {
    EXPECT_EQ(Base64Decode(hook["clientConfig"]["caBundle"].get<std::string>()), b.value().ca_pem);
  }
  // Rounds after that change nothing, on either replica, whoever leads.
  const size_t settled = api.Writes();
  for (int i = 0; i < 3; ++i) {
    std::swap(r1.leading, r2.leading);
    ASSERT_TRUE(sync_for(r1).Once().ok());
    ASSERT_TRUE(sync_for(r2).Once().ok());
  }
  EXPECT_EQ(api.Writes(), settled);
  EXPECT_EQ(r1.reloads + r2.reloads, 1);

  // A follower never repairs a missing Secret (it keeps serving); the leader recreates it and both follow.
  api.intercept = [](const testing::Call& c) -> std::optional<kube::ApiResponse> {
    if (c.method == "GET" && c.path == kSecret) return FakeKube::Answer(404, "not found");
    return std::nullopt;
  };
  r1.leading = false;
  r2.leading = true;
  EXPECT_FALSE(sync_for(r1).Once().ok());
  EXPECT_EQ(r1.serving.cert_pem, b.value().cert_pem);
  api.intercept = nullptr;
}

TEST(WebhookCaSync, CertManagerModeNeverWritesEvenWhenLeading) {
  FakeKube api;
  api.Put(kConfig, WebhookConfig(""));
  CertificateOptions external = Options();
  external.external = true;
  CertificateBootstrap boot(api, external);
  auto missing = boot.LoadAtStart();  // cert-manager has not issued yet: wait for it, do not make one
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(api.Writes(), 0u);
  // cert-manager stored one (here: as the controller would have): served, and still nothing written.
  ASSERT_TRUE(CertificateBootstrap(api, Options()).LoadOrCreate().ok());
  const size_t writes = api.Writes();
  auto tls = boot.LoadAtStart();
  ASSERT_TRUE(tls.ok()) << tls.status().message();
  ServingCertificate serving{};
  WebhookCaSync sync(boot, {[] { return true; }, [&serving] { return serving; },
                            [&serving](const ServingCertificate& t) {
                              serving = t;
                              return Status::Ok();
                            }});
  ASSERT_TRUE(sync.Once().ok());
  EXPECT_EQ(serving.cert_pem, tls.value().cert_pem);
  EXPECT_EQ(api.Writes(), writes);
  EXPECT_FALSE((*api.Get(kConfig))["webhooks"][0]["clientConfig"].contains("caBundle"));
}

TEST(CertificateBootstrap, ConcurrentChangeOfTheConfigurationIsRetried) {
  FakeKube api;
  api.Put(kConfig, WebhookConfig(""));
  bool changed = false;
  api.intercept = [&](const testing::Call& c) -> std::optional<kube::ApiResponse> {
    if (c.method == "PATCH" && !changed) {
      changed = true;
      api.Put(kConfig, WebhookConfig(""));  // bumps resourceVersion: our `test` op fails
    }
    return std::nullopt;
  };
  CertificateBootstrap boot(api, Options());
  auto cert = boot.Run();
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_TRUE(changed);
  EXPECT_EQ(Base64Decode((*api.Get(kConfig))["webhooks"][0]["clientConfig"]["caBundle"].get<std::string>()),
            cert.value().ca_pem);
}

TEST(CertificateBootstrap, MissingConfigurationOrApiErrorsAreStatuses) {
  FakeKube api;
  CertificateBootstrap boot(api, Options());
  auto cert = boot.LoadOrCreate();
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(boot.EnsureCaBundle(cert.value().ca_pem).code(), Status::Code::kNotFound);
  api.intercept = [](const testing::Call&) -> std::optional<kube::ApiResponse> {
    return FakeKube::Answer(403, "secrets \"memha-webhook-tls\" is forbidden");
  };
  auto denied = CertificateBootstrap(api, Options()).LoadOrCreate();
  ASSERT_FALSE(denied.ok());
  EXPECT_NE(denied.status().message().find("forbidden"), std::string::npos) << denied.status().message();
}

}  // namespace
}  // namespace memha::webhook
