#pragma once
// Where the API server is and how to authenticate: from the pod's service account (in-cluster) or from a
// kubeconfig file (running outside, tests). Certificates and keys are read at load time and kept as PEM text;
// a token file is kept as a path and re-read by HttpKubeApi (service-account tokens rotate).
//
//   auto config = kube::LoadConfig(flags.kubeconfig);  // --kubeconfig, else in-cluster, else $KUBECONFIG
//   if (!config.ok()) { MEMHA_LOG(kError, "kube", config.status().message()); return 1; }
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha::kube {

struct KubeConfig {
  std::string server;              // "https://10.96.0.1:443", "http://127.0.0.1:8080", may carry a path prefix
  std::string ca_pem;              // CA bundle (PEM); empty: the system's default trust store
  bool insecure_skip_tls_verify = false;
  std::string token;               // static bearer token
  std::string token_file;          // bearer token re-read from this file (wins over `token`)
  std::string client_cert_pem;     // client certificate authentication (both or neither)
  std::string client_key_pem;
  std::string default_namespace;   // the pod's namespace in-cluster, the context's namespace otherwise
  std::string source;              // "in-cluster" or the kubeconfig path (for logs)
};

// Where in-cluster configuration is read from; tests point these elsewhere.
struct InClusterEnv {
  std::function<std::string(const char*)> getenv;  // default: std::getenv
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

// KUBERNETES_SERVICE_HOST/PORT + the service-account token (as a file), ca.crt and namespace.
Result<KubeConfig> LoadInCluster(const InClusterEnv& env = {});

// A kubeconfig file (YAML or JSON, see yaml.h). `context` empty: current-context. Relative file paths
// in the kubeconfig are relative to the file's directory, as kubectl reads them.
Result<KubeConfig> LoadKubeconfigFile(const std::string& path, std::string_view context = "");
Result<KubeConfig> ParseKubeconfig(std::string_view text, const std::string& base_dir, std::string_view context = "");

// `kubeconfig_flag` if given; else in-cluster when KUBERNETES_SERVICE_HOST is set; else $KUBECONFIG.
Result<KubeConfig> LoadConfig(const std::string& kubeconfig_flag);

// Base64 (standard alphabet, padding optional, whitespace ignored), as kubeconfig "*-data" fields use.
Result<std::string> DecodeBase64(std::string_view in);

// Reads a whole file; NotFound / Unavailable with the path in the message.
Result<std::string> ReadFile(const std::string& path);

}  // namespace memha::kube
