#pragma once
// Admin HTTP (cpp-httplib, its own threads): PUT/GET /v1/topology, /healthz, /readyz, /metrics.
// Never touches data-plane objects: it validates into a Topology and hands it to the loop.
#include <memory>
#include <string>

#include "common/status.h"
#include "sidecar/admin/token_file.h"
#include "sidecar/admin/topology_store.h"

namespace memha::http { class ServingThread; }

namespace memha {

class Metrics;
class Proxy;

class AdminServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    uint16_t port = 0;
    TokenFile* token = nullptr;  // null: PUT is refused
  };
  AdminServer(Options options, Proxy* proxy, Metrics* metrics, TopologyStore* store);
  ~AdminServer();

  Status Start();  // binds, then serves on a thread
  void Stop();
  int port() const;

 private:
  Options options_;
  Proxy* proxy_;
  Metrics* metrics_;
  TopologyStore* store_;
  std::unique_ptr<http::ServingThread> http_;  // the httplib server and its thread
};

}  // namespace memha
