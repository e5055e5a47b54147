#include "controller/webhook/certificates.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <exception>
#include <memory>

#include <nlohmann/json.hpp>

#include "controller/webhook/base64.h"

namespace memha::webhook {
namespace {

using nlohmann::json;

template <auto Fn>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { Fn(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

std::string OpenSslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = {0};
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + (e != 0 ? std::string(": ") + buf : std::string());
}

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256")); }

bool AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

X509Ptr NewCertificate(EVP_PKEY* key, const std::string& common_name, std::chrono::hours validity) {
  X509Ptr cert(X509_new());
  if (!cert) return nullptr;
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return nullptr;
  serial[0] &= 0x7f;  // positive
  std::unique_ptr<BIGNUM, Deleter<BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) return nullptr;
  X509_set_version(cert.get(), 2);
  // An hour back: a node whose clock is a little behind still accepts it.
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr) return nullptr;
  if (X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(validity.count() / 24),
                       static_cast<long>((validity.count() % 24) * 3600), nullptr) == nullptr) {
    return nullptr;
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("memha"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  if (X509_set_pubkey(cert.get(), key) != 1) return nullptr;
  return cert;
}

std::string ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

X509Ptr CertFromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

KeyPtr KeyFromPem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return KeyPtr(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

std::string ApiError(const std::string& what, const kube::ApiResponse& r) {
  std::string message;
  try {
    message = json::parse(r.body).value("message", "");
  } catch (const std::exception&) {
  }
  return what + ": HTTP " + std::to_string(r.status) + (message.empty() ? "" : ": " + message);
}

constexpr int kAttempts = 4;

}  // namespace

std::vector<std::string> ServiceDnsNames(const std::string& service, const std::string& ns,
                                         const std::string& cluster_domain) {
  std::vector<std::string> names = {service, service + "." + ns, service + "." + ns + ".svc"};
  if (!cluster_domain.empty()) names.push_back(service + "." + ns + ".svc." + cluster_domain);
  return names;
}

Result<ServingCertificate> GenerateServingCertificate(const std::vector<std::string>& dns_names,
                                                      const std::vector<std::string>& ip_addresses,
                                                      std::chrono::hours validity) {
  if (dns_names.empty() && ip_addresses.empty()) {
    return Status::InvalidArgument("a serving certificate needs at least one DNS name or IP address");
  }
  KeyPtr ca_key = NewKey();
  KeyPtr key = NewKey();
  if (!ca_key || !key) return Status::Internal(OpenSslError("EC key generation failed"));

  X509Ptr ca = NewCertificate(ca_key.get(), "memha-webhook-ca", validity);
  if (!ca || X509_set_issuer_name(ca.get(), X509_get_subject_name(ca.get())) != 1 ||
      !AddExtension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !AddExtension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExtension(ca.get(), ca.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(ca.get(), ca_key.get(), EVP_sha256()) == 0) {
    return Status::Internal(OpenSslError("CA certificate"));
  }

  std::string san;
  for (const auto& n : dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + n;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  X509Ptr cert = NewCertificate(key.get(), dns_names.empty() ? ip_addresses.front() : dns_names.front(), validity);
  if (!cert || X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get())) != 1 ||
      !AddExtension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth") ||
      !AddExtension(cert.get(), ca.get(), NID_subject_alt_name, san) ||
      !AddExtension(cert.get(), ca.get(), NID_authority_key_identifier, "keyid:always") ||
      X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) {
    return Status::Internal(OpenSslError("serving certificate (SAN " + san + ")"));
  }
  ServingCertificate out{ToPem(ca.get()), ToPem(cert.get()), KeyToPem(key.get())};
  if (out.ca_pem.empty() || out.cert_pem.empty() || out.key_pem.empty()) {
    return Status::Internal(OpenSslError("PEM encoding"));
  }
  return out;
}

Status VerifyServingCertificate(const ServingCertificate& c, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses, std::chrono::seconds min_remaining) {
  X509Ptr ca = CertFromPem(c.ca_pem);
  X509Ptr cert = CertFromPem(c.cert_pem);
  KeyPtr key = KeyFromPem(c.key_pem);
  ERR_clear_error();
  if (!ca) return Status::InvalidArgument("CA certificate does not parse");
  if (!cert) return Status::InvalidArgument("serving certificate does not parse");
  if (!key) return Status::InvalidArgument("private key does not parse");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("private key does not match the certificate");
  }
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return Status::Internal(OpenSslError("X509 store"));
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  if (X509_verify_cert(ctx.get()) != 1) {
    return Status::InvalidArgument(std::string("certificate does not verify against the CA: ") +
                                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }
  for (const auto& name : dns_names) {
    if (X509_check_host(cert.get(), name.c_str(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) != 1) {
      return Status::InvalidArgument("certificate does not cover DNS name " + name);
    }
  }
  for (const auto& ip : ip_addresses) {
    if (X509_check_ip_asc(cert.get(), ip.c_str(), 0) != 1) {
      return Status::InvalidArgument("certificate does not cover IP address " + ip);
    }
  }
  time_t limit = std::time(nullptr) + static_cast<time_t>(min_remaining.count());
  for (X509* x : {cert.get(), ca.get()}) {
    if (X509_cmp_time(X509_get0_notAfter(x), &limit) <= 0) {
      return Status::InvalidArgument("certificate expires within " + std::to_string(min_remaining.count()) + " s");
    }
  }
  return Status::Ok();
}

CertificateBootstrap::CertificateBootstrap(kube::KubeApi& api, CertificateOptions options)
    : api_(api), options_(std::move(options)) {}

std::vector<std::string> CertificateBootstrap::DnsNames() const {
  std::vector<std::string> names = ServiceDnsNames(options_.service_name, options_.ns, options_.cluster_domain);
  names.insert(names.end(), options_.extra_dns_names.begin(), options_.extra_dns_names.end());
  return names;
}

Result<ServingCertificate> CertificateBootstrap::Load() {
  const std::string path = "/api/v1/namespaces/" + options_.ns + "/secrets/" + options_.secret_name;
  auto got = api_.Request("GET", path);
  if (!got.ok()) return Status::Unavailable("GET webhook TLS secret: " + got.status().message());
  if (got.value().status == 404) return Status::NotFound("no Secret " + options_.ns + "/" + options_.secret_name);
  if (got.value().status != 200) {
    return Status::Unavailable(ApiError("GET secret " + options_.ns + "/" + options_.secret_name, got.value()));
  }
  ServingCertificate stored;
  try {
    json s = json::parse(got.value().body);
    const json data = s.value("data", json::object());
    auto field = [&](const char* k) { return Base64Decode(data.value(k, "")).value_or(""); };
    stored = {field("ca.crt"), field("tls.crt"), field("tls.key")};
  } catch (const std::exception&) {
    return Status::NotFound("Secret " + options_.ns + "/" + options_.secret_name + " is unreadable");
  }
  if (Status v = VerifyServingCertificate(stored, DnsNames(), options_.ip_addresses, std::chrono::seconds(0));
      !v.ok()) {
    return Status::NotFound("Secret " + options_.ns + "/" + options_.secret_name + ": " + v.message());
  }
  return stored;
}

Result<ServingCertificate> CertificateBootstrap::LoadOrCreate() {
  const std::string collection = "/api/v1/namespaces/" + options_.ns + "/secrets";
  const std::string path = collection + "/" + options_.secret_name;
  const auto names = DnsNames();
  const auto min_remaining = std::chrono::duration_cast<std::chrono::seconds>(options_.renew_before);
  auto secret_json = [&](const ServingCertificate& c, const std::string& resource_version) {
    json s = {{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"type", "kubernetes.io/tls"},
              {"metadata",
               {{"name", options_.secret_name},
                {"namespace", options_.ns},
                {"labels", {{"app.kubernetes.io/managed-by", "memha-controller"}}}}},
              {"data",
               {{"ca.crt", Base64Encode(c.ca_pem)}, {"tls.crt", Base64Encode(c.cert_pem)},
                {"tls.key", Base64Encode(c.key_pem)}}}};
    if (!resource_version.empty()) s["metadata"]["resourceVersion"] = resource_version;
    return s.dump();
  };
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto got = api_.Request("GET", path);
    if (!got.ok()) return Status::Unavailable("GET webhook TLS secret: " + got.status().message());
    std::string resource_version;
    if (got.value().status == 200) {
      ServingCertificate stored;
      try {
        json s = json::parse(got.value().body);
        resource_version = s["metadata"].value("resourceVersion", "");
        const json data = s.value("data", json::object());
        auto field = [&](const char* k) { return Base64Decode(data.value(k, "")).value_or(""); };
        stored = {field("ca.crt"), field("tls.crt"), field("tls.key")};
      } catch (const std::exception&) {
        // Unreadable: replaced below.
      }
      if (VerifyServingCertificate(stored, names, options_.ip_addresses, min_remaining).ok()) return stored;
    } else if (got.value().status != 404) {
      return Status::Unavailable(ApiError("GET secret " + options_.ns + "/" + options_.secret_name, got.value()));
    }
    auto fresh = GenerateServingCertificate(names, options_.ip_addresses, options_.validity);
    if (!fresh.ok()) return fresh.status();
    const bool create = resource_version.empty();
    auto put = create ? api_.Request("POST", collection, secret_json(fresh.value(), ""))
                      : api_.Request("PUT", path, secret_json(fresh.value(), resource_version));
    if (!put.ok()) return Status::Unavailable("store webhook TLS secret: " + put.status().message());
    if (put.value().status == 200 || put.value().status == 201) return fresh;
    if (put.value().status == 409) continue;  // the other replica stored one first: use it
    return Status::Unavailable(ApiError(create ? "create webhook TLS secret" : "replace webhook TLS secret", put.value()));
  }
  return Status::Unavailable("webhook TLS secret: still conflicting after retries");
}

Status CertificateBootstrap::EnsureCaBundle(const std::string& ca_pem, bool only_where_empty) {
  if (options_.webhook_configuration.empty()) return Status::Ok();
  const std::string path =
      "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + options_.webhook_configuration;
  const std::string bundle = Base64Encode(ca_pem);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto got = api_.Request("GET", path);
    if (!got.ok()) return Status::Unavailable("GET webhook configuration: " + got.status().message());
    if (got.value().status == 404) {
      return Status::NotFound("MutatingWebhookConfiguration " + options_.webhook_configuration + " does not exist");
    }
    if (got.value().status != 200) return Status::Unavailable(ApiError("GET webhook configuration", got.value()));
    json patch = json::array();
    try {
      json config = json::parse(got.value().body);
      patch.push_back({{"op", "test"}, {"path", "/metadata/resourceVersion"},
                       {"value", config.at("metadata").value("resourceVersion", "")}});
      const json webhooks = config.value("webhooks", json::array());
      for (size_t i = 0; i < webhooks.size(); ++i) {
        const json client = webhooks[i].value("clientConfig", json::object());
        const std::string held = client.value("caBundle", "");
        if (held == bundle || (only_where_empty && !held.empty())) continue;
        patch.push_back({{"op", "add"},
                         {"path", "/webhooks/" + std::to_string(i) + "/clientConfig/caBundle"},
                         {"value", bundle}});
      }
    } catch (const std::exception& e) {
      return Status::Internal(std::string("webhook configuration: unexpected JSON: ") + e.what());
    }
    if (patch.size() == 1) return Status::Ok();  // only the test: every caBundle is already ours
    auto patched = api_.Request("PATCH", path, patch.dump(), "application/json-patch+json");
    if (!patched.ok()) return Status::Unavailable("PATCH webhook configuration: " + patched.status().message());
    const int s = patched.value().status;
    if (s == 200) return Status::Ok();
    if (s == 409 || s == 422) continue;  // changed meanwhile (the test op failed): read it again
    return Status::Unavailable(ApiError("PATCH webhook configuration", patched.value()));
  }
  return Status::Unavailable("webhook configuration: still conflicting after retries");
}

Result<ServingCertificate> CertificateBootstrap::LoadAtStart() {
  auto tls = Load();
  if (!tls.ok() && tls.status().code() == Status::Code::kNotFound && !options_.external) return LoadOrCreate();
  return tls;
}

Result<ServingCertificate> CertificateBootstrap::Run() {
  auto cert = LoadOrCreate();
  if (!cert.ok()) return cert;
  if (Status s = EnsureCaBundle(cert.value().ca_pem); !s.ok()) return s;
  return cert;
}

}  // namespace memha::webhook
