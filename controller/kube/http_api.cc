#include "controller/kube/http_api.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cctype>
#include <csignal>

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"

namespace memha::kube {
namespace {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemBio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// Every certificate of a PEM bundle.
std::vector<std::unique_ptr<X509, X509Free>> ReadCerts(const std::string& pem) {
  std::vector<std::unique_ptr<X509, X509Free>> out;
  BioPtr bio = MemBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
  ERR_clear_error();  // the read that ended the loop left an error on the queue
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void CopyHeaders(const httplib::Headers& from, std::map<std::string, std::string>* to) {
  for (const auto& [k, v] : from) to->emplace(Lower(k), v);
}

// TCP keepalive so a watch on a silently dead connection ends in about a minute rather than at the idle timeout.
void KeepaliveSocketOptions(int sock) {
  int on = 1;
  int idle = 30;
  int interval = 10;
  int count = 3;
  setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  setsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

}  // namespace

struct HttpKubeApi::Tls {
  std::vector<std::unique_ptr<X509, X509Free>> ca;
  std::unique_ptr<X509, X509Free> client_cert;
  std::unique_ptr<EVP_PKEY, PkeyFree> client_key;
  bool verify = true;
};

Result<ServerUrl> ParseServerUrl(const std::string& server) {
  ServerUrl u;
  std::string rest;
  if (server.rfind("https://", 0) == 0) {
    rest = server.substr(8);
  } else if (server.rfind("http://", 0) == 0) {
    u.https = false;
    rest = server.substr(7);
  } else {
    return Status::InvalidArgument("server URL must start with https:// or http://: " + server);
  }
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) {
    u.prefix = rest.substr(slash);
    while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  }
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("bad IPv6 address in " + server);
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Status::InvalidArgument("bad server URL " + server);
      port = authority.substr(close + 2);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return Status::InvalidArgument("server URL has no host: " + server);
  if (port.empty()) {
    u.port = u.https ? 443 : 80;
  } else {
    u.port = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || u.port > 65535)
        return Status::InvalidArgument("bad port in " + server);
      u.port = u.port * 10 + (c - '0');
    }
    if (u.port <= 0 || u.port > 65535) return Status::InvalidArgument("bad port in " + server);
  }
  return u;
}

HttpKubeApi::HttpKubeApi(const KubeConfig& config, HttpOptions options, Clock& clock)
    : options_(std::move(options)),
      server_(config.server),
      tokens_(config.token, config.token_file, clock, options_.token_refresh) {}

HttpKubeApi::~HttpKubeApi() = default;

Result<std::unique_ptr<HttpKubeApi>> HttpKubeApi::Create(const KubeConfig& config, HttpOptions options,
                                                         Clock& clock) {
  auto url = ParseServerUrl(config.server);
  if (!url.ok()) return url.status();
  // OpenSSL writes (close_notify) to sockets the server already closed; without this SIGPIPE kills the process.
  static const bool sigpipe_ignored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)sigpipe_ignored;
  std::unique_ptr<HttpKubeApi> api(new HttpKubeApi(config, std::move(options), clock));
  api->https_ = url.value().https;
  api->host_ = url.value().host;
  api->port_ = url.value().port;
  api->prefix_ = url.value().prefix;
  if (api->https_) {
    auto tls = std::make_unique<Tls>();
    tls->verify = !config.insecure_skip_tls_verify;
    if (!config.ca_pem.empty()) {
      tls->ca = ReadCerts(config.ca_pem);
      if (tls->ca.empty()) return Status::InvalidArgument("no PEM certificate in the certificate authority data");
    }
    if (!config.client_cert_pem.empty()) {
      BioPtr cert_bio = MemBio(config.client_cert_pem);
      tls->client_cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
      BioPtr key_bio = MemBio(config.client_key_pem);
      tls->client_key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
      ERR_clear_error();
      if (!tls->client_cert) return Status::InvalidArgument("client certificate is not PEM");
      if (!tls->client_key) return Status::InvalidArgument("client key is not PEM");
    }
    api->tls_ = std::move(tls);
    // Fail at start-up rather than at the first request when the certificate and key do not match.
    if (!api->NewClient(false)) return Status::InvalidArgument("TLS client setup failed (certificate/key mismatch?)");
  } else if (!config.client_cert_pem.empty()) {
    return Status::InvalidArgument("a client certificate needs an https:// server");
  }
  return api;
}

std::unique_ptr<httplib::ClientImpl> HttpKubeApi::NewClient(bool stream) {
  std::unique_ptr<httplib::ClientImpl> client;
  if (https_) {
    std::unique_ptr<httplib::SSLClient> ssl;
    if (tls_->client_cert) {
      ssl = std::make_unique<httplib::SSLClient>(host_, port_, tls_->client_cert.get(), tls_->client_key.get());
    } else {
      ssl = std::make_unique<httplib::SSLClient>(host_, port_);
    }
    if (!ssl->is_valid()) return nullptr;
    ssl->enable_server_certificate_verification(tls_->verify);
    if (!tls_->ca.empty()) {
      X509_STORE* store = X509_STORE_new();  // owned by the client's SSL_CTX from here
      for (const auto& cert : tls_->ca) X509_STORE_add_cert(store, cert.get());
      ssl->set_ca_cert_store(store);
    }
    client = std::move(ssl);
  } else {
    client = std::make_unique<httplib::ClientImpl>(host_, port_);
  }
  client->set_connection_timeout(options_.connect_timeout);
  client->set_read_timeout(stream ? options_.stream_idle_timeout : options_.request_timeout);
  client->set_write_timeout(options_.request_timeout);
  client->set_keep_alive(!stream);
  client->set_tcp_nodelay(true);
  client->set_socket_options(KeepaliveSocketOptions);
  return client;
}

std::unique_ptr<httplib::ClientImpl> HttpKubeApi::TakeIdle(bool* reused) {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      *reused = true;
      return c;
    }
  }
  *reused = false;
  return NewClient(false);
}

void HttpKubeApi::GiveBack(std::unique_ptr<httplib::ClientImpl> client) {
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(client));
}

Result<ApiResponse> HttpKubeApi::Request(std::string_view method, const std::string& path, const std::string& body,
                                         std::string_view content_type) {
  bool retried_stale = false;
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto client = TakeIdle(&reused);
    if (!client) return Status::Internal("cannot create an HTTP client");
    httplib::Request req;
    req.method = std::string(method);
    req.path = prefix_ + path;
    req.headers.emplace("Accept", "application/json");
    req.headers.emplace("User-Agent", options_.user_agent);
    std::string token = tokens_.Get();
    if (!token.empty()) req.headers.emplace("Authorization", "Bearer " + token);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      req.headers.emplace("Content-Type", std::string(content_type));
      req.body = body;
    }
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool sent = false;
    try {
      sent = client->send(req, res, err);
    } catch (const std::exception& e) {
      return Status::Unavailable(std::string("http: ") + e.what());
    }
    if (!sent && reused && !retried_stale && (method == "GET" || method == "PUT")) {
      // A pooled keep-alive connection the server closed meanwhile: once more on a fresh one (GET and a PUT
      // carrying a resourceVersion are safe to repeat).
      retried_stale = true;
      --attempt;
      continue;
    }
    if (!sent) return Status::Unavailable(req.method + " " + path + ": " + httplib::to_string(err));
    GiveBack(std::move(client));
    if (res.status == 401 && attempt == 0 && tokens_.Refresh()) {
      MEMHA_LOG(kInfo, "kube", "401 from the API server; re-read the token file, retrying once");
      continue;
    }
    ApiResponse out;
    out.status = res.status;
    out.body = std::move(res.body);
    CopyHeaders(res.headers, &out.headers);
    return out;
  }
}

Result<ApiResponse> HttpKubeApi::Stream(const std::string& path,
                                        const std::function<bool(std::string_view)>& on_chunk) {
  for (int attempt = 0;; ++attempt) {
    if (cancelled_) return Status::Unavailable("cancelled");
    std::unique_ptr<httplib::ClientImpl> client = NewClient(true);
    if (!client) return Status::Internal("cannot create an HTTP client");
    {
      std::lock_guard lock(mu_);
      if (cancelled_) return Status::Unavailable("cancelled");
      streams_.insert(client.get());
    }
    ApiResponse out;
    bool stopped_by_callback = false;
    httplib::Request req;
    req.method = "GET";
    req.path = prefix_ + path;
    req.headers.emplace("Accept", "application/json");
    req.headers.emplace("User-Agent", options_.user_agent);
    std::string token = tokens_.Get();
    if (!token.empty()) req.headers.emplace("Authorization", "Bearer " + token);
    req.response_handler = [&](const httplib::Response& r) {
      out.status = r.status;
      CopyHeaders(r.headers, &out.headers);
      return !cancelled_.load();
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (cancelled_) return false;
      if (out.status != 200) {
        size_t room = options_.max_error_body - std::min(options_.max_error_body, out.body.size());
        out.body.append(data, std::min(n, room));
        return true;
      }
      if (!on_chunk(std::string_view(data, n))) {
        stopped_by_callback = true;
        return false;
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    bool sent = false;
    std::string exception;
    try {
      sent = client->send(req, res, err);
    } catch (const std::exception& e) {
      exception = e.what();
    }
    {
      std::lock_guard lock(mu_);
      streams_.erase(client.get());
    }
    streams_cv_.notify_all();
    client.reset();
    if (stopped_by_callback) return out;
    if (cancelled_) return Status::Unavailable("cancelled");
    if (!exception.empty()) return Status::Unavailable("watch " + path + ": " + exception);
    if (!sent) {
      return Status::Unavailable(std::string(out.status == 200 ? "watch stream broken: " : "watch: ") +
                                 httplib::to_string(err));
    }
    if (out.status == 401 && attempt == 0 && tokens_.Refresh()) {
      MEMHA_LOG(kInfo, "kube", "401 on a watch; re-read the token file, retrying once");
      continue;
    }
    return out;
  }
}

void HttpKubeApi::Cancel() {
  cancelled_ = true;
  std::unique_lock lock(mu_);
  // A stream may still be connecting when stop() is first called; repeat until every stream has returned.
  while (!streams_.empty()) {
    for (httplib::ClientImpl* c : streams_) c->stop();
    streams_cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

}  // namespace memha::kube
