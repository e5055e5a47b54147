#pragma once
// Webhook serving certificates without cert-manager and without anything generated at chart-render time:
// the controller makes a self-signed CA and a serving certificate for its Service's DNS names (OpenSSL,
// ECDSA P-256), keeps them in a Secret so both replicas serve the same one (create; 409 -> read the winner's),
// and writes the CA into the MutatingWebhookConfiguration's caBundle. A stored certificate that is invalid,
// expires within `renew_before`, or lacks a needed name is replaced (guarded by resourceVersion).
#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "controller/kube/api.h"

namespace memha::webhook {

struct ServingCertificate {
  std::string ca_pem;    // the CA certificate (the caBundle, base64 of this)
  std::string cert_pem;  // serving certificate
  std::string key_pem;   // its private key (PKCS#8)
};

// "svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.<domain>".
std::vector<std::string> ServiceDnsNames(const std::string& service, const std::string& ns,
                                         const std::string& cluster_domain = "cluster.local");

// A new CA and a serving certificate signed by it, with these SANs (at least one name or address).
Result<ServingCertificate> GenerateServingCertificate(const std::vector<std::string>& dns_names,
                                                      const std::vector<std::string>& ip_addresses,
                                                      std::chrono::hours validity);

// Ok when the certificate chains to the CA for TLS server use, the key matches, every name and address is in
// the SAN, and it stays valid for at least `min_remaining`.
Status VerifyServingCertificate(const ServingCertificate& cert, const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses, std::chrono::seconds min_remaining);

struct CertificateOptions {
  std::string ns;                                   // the controller's namespace (where the Secret lives)
  std::string secret_name = "memha-webhook-tls";    // type kubernetes.io/tls: ca.crt, tls.crt, tls.key
  std::string service_name = "memha-controller";
  std::string cluster_domain = "cluster.local";
  std::vector<std::string> extra_dns_names;
  std::vector<std::string> ip_addresses;            // e.g. 127.0.0.1 for a webhook reached by URL in tests
  std::string webhook_configuration = "memha-sidecar-injector";  // MutatingWebhookConfiguration; empty: none
  std::chrono::hours validity{24 * 3650};
  std::chrono::hours renew_before{24 * 30};
  // cert-manager owns the Secret and the caBundle (cert-manager.io/inject-ca-from): read only, never written.
  bool external = false;
};

class CertificateBootstrap {
 public:
  CertificateBootstrap(kube::KubeApi& api, CertificateOptions options);

  // The shared serving certificate: read from the Secret, or generated and stored there.
  Result<ServingCertificate> LoadOrCreate();
  // Read only: the stored certificate if it can serve now (not expired, the right names); NotFound if missing or
  // unusable, Unavailable on API trouble. What a replica that does not lead serves.
  Result<ServingCertificate> Load();
  // Sets caBundle of every webhook in the configuration to this CA, if it differs (no write otherwise).
  // Cheap when nothing changed; call it at start and periodically (a re-applied manifest may blank it).
  // `only_where_empty`: fill a missing caBundle but never replace one (what a replica that does not lead may do).
  Status EnsureCaBundle(const std::string& ca_pem, bool only_where_empty = false);
  // Both, in order.
  Result<ServingCertificate> Run();
  // At start, before any replica leads: Load(); a missing or unusable Secret is made (LoadOrCreate) unless it is
  // external, since the API server cannot call a webhook without one.
  Result<ServingCertificate> LoadAtStart();
  bool external() const { return options_.external; }

  std::vector<std::string> DnsNames() const;

 private:
  kube::KubeApi& api_;
  CertificateOptions options_;
};

}  // namespace memha::webhook
