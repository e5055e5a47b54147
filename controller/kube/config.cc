#include "controller/kube/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/crypto/ed25519.h"
#include "controller/kube/yaml.h"

namespace memha::kube {
namespace {

using nlohmann::json;

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

std::string TrimSpace(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A named entry of "clusters"/"users"/"contexts": [{name: x, <field>: {...}}].
Result<json> FindNamed(const json& root, const char* list, const char* field, const std::string& name) {
  auto it = root.find(list);
  if (it == root.end() || !it->is_array()) return Status::InvalidArgument(std::string("kubeconfig: no ") + list);
  for (const json& e : *it) {
    if (!e.is_object()) continue;
    auto n = e.find("name");
    if (n != e.end() && n->is_string() && n->get<std::string>() == name) {
      auto f = e.find(field);
      if (f == e.end() || f->is_null()) return json::object();
      if (!f->is_object()) return Status::InvalidArgument(std::string("kubeconfig: ") + list + " entry '" + name +
                                                          "' has a " + field + " that is not a mapping");
      return *f;
    }
  }
  return Status::InvalidArgument(std::string("kubeconfig: ") + list + " has no entry named '" + name + "'");
}

std::string GetString(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

bool GetBool(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return it->is_string() && it->get<std::string>() == "true";
}

// "<key>-data" (base64) or "<key>" (a file path); both absent: empty.
Result<std::string> DataOrFile(const json& o, const std::string& key, const std::string& base_dir) {
  std::string data = GetString(o, (key + "-data").c_str());
  if (!data.empty()) {
    auto decoded = DecodeBase64(data);
    if (!decoded.ok()) return Status::InvalidArgument("kubeconfig: " + key + "-data: " + decoded.status().message());
    return decoded;
  }
  std::string file = GetString(o, key.c_str());
  if (file.empty()) return std::string();
  return ReadFile(Resolve(base_dir, file));
}

const char* kUnsupportedAuth[] = {"exec", "auth-provider", "username", "password"};

}  // namespace

Result<std::string> DecodeBase64(std::string_view in) {
  // kubeconfig data fields: whitespace (wrapped lines) is ignored and missing padding tolerated, as kubectl does;
  // the decoding itself is OpenSSL's (common/crypto).
  std::string text;
  text.reserve(in.size() + 2);
  for (char c : in) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') text.push_back(c);
  }
  if (text.size() % 4 == 1) return Status::InvalidArgument("truncated base64");
  while (text.size() % 4 != 0) text.push_back('=');
  auto out = crypto::Base64Decode(text);
  if (!out) return Status::InvalidArgument("invalid base64 data");
  return *out;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::Unavailable("cannot read " + path);
  return ss.str();
}

Result<KubeConfig> LoadInCluster(const InClusterEnv& env) {
  auto getenv = env.getenv ? env.getenv : [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  std::string host = getenv("KUBERNETES_SERVICE_HOST");
  std::string port = getenv("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty())
    return Status::NotFound("not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set");
  KubeConfig c;
  c.source = "in-cluster";
  bool ipv6 = host.find(':') != std::string::npos;
  c.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;
  const std::string& dir = env.service_account_dir;
  c.token_file = dir + "/token";
  auto token = ReadFile(c.token_file);
  if (!token.ok()) return Status::NotFound("in-cluster: service-account token: " + token.status().message());
  auto ca = ReadFile(dir + "/ca.crt");
  if (!ca.ok()) return Status::NotFound("in-cluster: " + ca.status().message());
  c.ca_pem = std::move(ca).value();
  auto ns = ReadFile(dir + "/namespace");
  c.default_namespace = ns.ok() ? TrimSpace(ns.value()) : "default";
  return c;
}

Result<KubeConfig> ParseKubeconfig(std::string_view text, const std::string& base_dir, std::string_view context) {
  json root;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    root = json::parse(text, nullptr, false);
    if (root.is_discarded()) return Status::InvalidArgument("kubeconfig: invalid JSON");
  } else {
    auto parsed = ParseYaml(text);
    if (!parsed.ok()) return Status::InvalidArgument("kubeconfig: " + parsed.status().message());
    root = std::move(parsed).value();
  }
  if (!root.is_object()) return Status::InvalidArgument("kubeconfig: not a mapping");
  try {
    std::string ctx_name = context.empty() ? GetString(root, "current-context") : std::string(context);
    if (ctx_name.empty()) return Status::InvalidArgument("kubeconfig: no current-context");
    auto ctx = FindNamed(root, "contexts", "context", ctx_name);
    if (!ctx.ok()) return ctx.status();
    std::string cluster_name = GetString(ctx.value(), "cluster");
    std::string user_name = GetString(ctx.value(), "user");
    auto cluster = FindNamed(root, "clusters", "cluster", cluster_name);
    if (!cluster.ok()) return cluster.status();
    KubeConfig c;
    c.source = "kubeconfig";
    c.default_namespace = GetString(ctx.value(), "namespace");
    if (c.default_namespace.empty()) c.default_namespace = "default";
    c.server = GetString(cluster.value(), "server");
    if (c.server.empty()) return Status::InvalidArgument("kubeconfig: cluster '" + cluster_name + "' has no server");
    if (!GetString(cluster.value(), "proxy-url").empty())
      return Status::InvalidArgument("kubeconfig: proxy-url is not supported");
    c.insecure_skip_tls_verify = GetBool(cluster.value(), "insecure-skip-tls-verify");
    auto ca = DataOrFile(cluster.value(), "certificate-authority", base_dir);
    if (!ca.ok()) return ca.status();
    c.ca_pem = std::move(ca).value();
    if (!user_name.empty()) {
      auto user = FindNamed(root, "users", "user", user_name);
      if (!user.ok()) return user.status();
      const json& u = user.value();
      for (const char* key : kUnsupportedAuth) {
        if (u.contains(key))
          return Status::InvalidArgument(std::string("kubeconfig: user '") + user_name + "': '" + key +
                                         "' authentication is not supported (use a token or a client certificate)");
      }
      c.token = GetString(u, "token");
      std::string token_file = GetString(u, "tokenFile");
      if (!token_file.empty()) c.token_file = Resolve(base_dir, token_file);
      auto cert = DataOrFile(u, "client-certificate", base_dir);
      if (!cert.ok()) return cert.status();
      auto key = DataOrFile(u, "client-key", base_dir);
      if (!key.ok()) return key.status();
      c.client_cert_pem = std::move(cert).value();
      c.client_key_pem = std::move(key).value();
      if (c.client_cert_pem.empty() != c.client_key_pem.empty())
        return Status::InvalidArgument("kubeconfig: user '" + user_name +
                                       "' needs both a client certificate and a client key");
    }
    return c;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("kubeconfig: ") + e.what());
  }
}

Result<KubeConfig> LoadKubeconfigFile(const std::string& path, std::string_view context) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto c = ParseKubeconfig(text.value(), Dirname(path), context);
  if (!c.ok()) return Status::InvalidArgument(path + ": " + c.status().message());
  KubeConfig config = std::move(c).value();
  config.source = path;
  return config;
}

Result<KubeConfig> LoadConfig(const std::string& kubeconfig_flag) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfigFile(kubeconfig_flag);
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') return LoadInCluster();
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    std::string first(env);
    first = first.substr(0, first.find(':'));  // a list: the first file (merging is not supported)
    return LoadKubeconfigFile(first);
  }
  return Status::NotFound("no Kubernetes configuration: give --kubeconfig, run in a pod, or set KUBECONFIG");
}

}  // namespace memha::kube
