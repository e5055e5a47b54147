#pragma once
// Boot-time fetch of this pod's topology from the controller (DESIGN.md: "a sidecar that starts before any push
// asks the controller"). Runs on its own thread; retries with capped, jittered backoff until a topology is held
// (fetched, pushed, or loaded from the state file), so a controller outage never blanks a sidecar.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "common/topology.h"

namespace memha {

class TopologyBootstrap {
 public:
  struct Options {
    std::string controller_url;  // http://host:port
    std::string pod;             // ns/name
    // The pod's projected ServiceAccount token (audience memha), read at every attempt: the kubelet rewrites it
    // before it expires. The controller checks it with a TokenReview and answers only for the pod it is bound to.
    std::string token_file;
    std::chrono::milliseconds first_retry{250};
    std::chrono::milliseconds max_retry{5000};
  };
  // `offer` hands a fetched topology to the store (which orders it against pushes); `has_topology` tells
  // whether one is held already.
  TopologyBootstrap(Options options, std::function<Status(const Topology&)> offer,
                    std::function<bool()> has_topology);
  ~TopologyBootstrap();
  void Start();
  void Stop();
  int attempts() const { return attempts_.load(); }
  bool fetched() const { return fetched_.load(); }

 private:
  void Run();
  bool FetchOnce();  // true when the controller gave a definite answer (200 or 404)

  Options options_;
  std::function<Status(const Topology&)> offer_;
  std::function<bool()> has_topology_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<int> attempts_{0};
  std::atomic<bool> fetched_{false};
};

}  // namespace memha
