#pragma once
// KubeApi over HTTPS (or plain HTTP for fake servers in tests) with cpp-httplib.
//
//   auto config = kube::LoadConfig(flags.kubeconfig);
//   auto api = kube::HttpKubeApi::Create(config.value());          // one per watcher / elector (see Cancel)
//   auto r = api.value()->Request("GET", "/api/v1/namespaces/default/pods?limit=500");
//
// - TLS: the config's CA (PEM) verifies the server, hostname/IP included; client certificate or bearer token.
// - Token files are re-read at most every `token_refresh` and at once on a 401, then the request is retried once.
// - Requests share a small pool of keep-alive connections; every Stream gets its own connection.
// - Cancel() aborts the Streams in flight from any thread and makes later Streams fail at once (shutdown); it
//   does not touch ordinary Requests (they are bounded by `request_timeout`), so a Lease can still be released.
// - Create() sets SIGPIPE to SIG_IGN for the process (OpenSSL writes to sockets the server closed).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controller/kube/api.h"
#include "controller/kube/clock.h"
#include "controller/kube/config.h"
#include "controller/kube/token.h"

namespace httplib {
class ClientImpl;
}

namespace memha::kube {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};       // read timeout of a Request
  std::chrono::milliseconds stream_idle_timeout{420000};  // a watch with no byte for this long is broken; keep it
                                                          // above the watcher's timeoutSeconds (<= 360 s)
  Duration token_refresh = std::chrono::seconds(60);
  size_t max_error_body = 64 * 1024;  // bytes kept of a non-200 stream answer
  size_t max_idle_connections = 4;
  std::string user_agent = "memha-controller";
};

class HttpKubeApi final : public KubeApi {
 public:
  static Result<std::unique_ptr<HttpKubeApi>> Create(const KubeConfig& config, HttpOptions options = {},
                                                     Clock& clock = RealClock::Instance());
  ~HttpKubeApi() override;
  HttpKubeApi(const HttpKubeApi&) = delete;
  HttpKubeApi& operator=(const HttpKubeApi&) = delete;

  Result<ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body = "",
                              std::string_view content_type = "application/json") override;
  Result<ApiResponse> Stream(const std::string& path,
                             const std::function<bool(std::string_view)>& on_chunk) override;
  void Cancel() override;

  const std::string& server() const { return server_; }

 private:
  struct Tls;
  HttpKubeApi(const KubeConfig& config, HttpOptions options, Clock& clock);
  std::unique_ptr<httplib::ClientImpl> NewClient(bool stream);
  std::unique_ptr<httplib::ClientImpl> TakeIdle(bool* reused);
  void GiveBack(std::unique_ptr<httplib::ClientImpl> client);

  const HttpOptions options_;
  std::string server_;
  bool https_ = false;
  std::string host_;
  int port_ = 0;
  std::string prefix_;  // path prefix of the server URL, without trailing '/'
  std::unique_ptr<Tls> tls_;
  TokenSource tokens_;

  std::mutex mu_;
  std::condition_variable streams_cv_;
  std::vector<std::unique_ptr<httplib::ClientImpl>> idle_;
  std::set<httplib::ClientImpl*> streams_;
  std::atomic<bool> cancelled_{false};
};

// "scheme://host[:port][/prefix]" -> parts. Exposed for tests.
struct ServerUrl {
  bool https = true;
  std::string host;  // without brackets for IPv6
  int port = 0;
  std::string prefix;
};
Result<ServerUrl> ParseServerUrl(const std::string& server);

}  // namespace memha::kube
