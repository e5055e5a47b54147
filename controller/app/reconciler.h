#pragma once
// The reconcile loop (level-based): wait for a store change (bursts coalesced for `coalesce`), compute every
// application pod's desired topology (controller/topology, a pure function), and, while leading, hand the whole
// desired state to the pusher, which sends only what changed. New configuration errors go to the log, the
// metrics and (leader only, so two replicas do not double them) a Kubernetes Event on the object.
//
// Both replicas compute (they answer GET /v1/topology); a follower computes with epoch 0, below every leader's
// epoch (>= 1), so a sidecar that booted from a follower's answer takes the leader's next push.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "controller/admin/metrics.h"
#include "controller/model/store.h"
#include "controller/push/pusher.h"
#include "controller/topology/desired.h"

namespace memha::app {

// The pool Services a topology in `state` depends on: every Service the pass built a pool from (named by a pod's
// memha.io/pools, current or last good, whether or not the pod got a topology), and each one's backup pool.
// Pod changes outside them and without memha.io/pools cost no pass.
std::set<std::string> PoolServicesInUse(const topology::State& state);

struct ReconcileOptions {
  topology::Options topology;
  std::chrono::milliseconds coalesce{20};       // wait this long after a change for the rest of a burst
  std::chrono::milliseconds interval{5000};     // recompute at least this often (member grace expiry)
  std::chrono::milliseconds poll{50};           // how often a leadership change is noticed between changes
  uint64_t version_seed = 0;                    // first version - 1; 0: wall-clock milliseconds (see docs)
  // Bulk refill (controller/refill): the members' refill marks, read at the start of every pass, and the pools
  // as computed, handed over after every pass (on the reconcile thread, with `leading`).
  std::function<topology::RefillMarks()> refill_marks;
  std::function<void(const topology::State&, bool leading)> on_pass;
};

class Reconciler {
 public:
  // `on_new_error(error, uid)`: called on the reconcile thread, leader only, once per distinct error.
  using ErrorSink = std::function<void(const topology::TopologyError&, const std::string& uid)>;

  Reconciler(model::Store& store, push::TopologyPusher& pusher, admin::ControllerMetrics* metrics,
             ReconcileOptions options, ErrorSink on_new_error = nullptr);
  ~Reconciler();

  void Start();  // the loop on its own thread
  void Stop();

  // Leadership (from the elector's callbacks). Starting: the next pass re-stamps every topology with `epoch`,
  // hands it to the pusher and starts it. Stopping: the pusher stops at once (requests in flight aborted).
  void StartLeading(uint64_t epoch);
  void StopLeading();
  bool Leading() const { return leading_.load(); }
  uint64_t Epoch() const { return epoch_.load(); }

  // One pass now, on the caller's thread (tests; the loop calls it too). No-op before the store is synced.
  void ReconcileOnce();
  // A pass soon (within `poll`) although the store did not change: the refill marks did.
  void Poke();

  // The pod's current topology as JSON (GET /v1/topology), or nullopt when it has none.
  std::optional<std::string> TopologyJson(const std::string& pod) const;
  size_t Sidecars() const;
  size_t CurrentErrors() const;
  // Pods with a topology but no memha-sidecar container (injection skipped or failed): served, never pushed.
  size_t PodsWithoutSidecar() const;
  // The namespaces of the pods that have a sidecar (where the token copy must be current).
  std::set<std::string> SidecarNamespaces() const;
  uint64_t Passes() const { return passes_.load(); }

 private:
  void Loop();

  model::Store& store_;
  push::TopologyPusher& pusher_;
  admin::ControllerMetrics* metrics_;
  const ReconcileOptions options_;
  ErrorSink on_new_error_;

  std::atomic<bool> leading_{false};
  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> restamp_{false};  // leadership changed: recompute even without a store change
  std::atomic<uint64_t> passes_{0};

  std::mutex pass_mu_;  // one pass at a time; also orders pusher Start/Stop against a pass in progress
  topology::State state_;                       // pass_mu_
  std::set<topology::TopologyError> logged_;  // pass_mu_: errors already logged and counted
  std::set<topology::TopologyError> posted_;  // pass_mu_: errors already posted as Events (this leadership)
  std::set<std::string> without_sidecar_;     // pass_mu_: pods logged as having no sidecar container
  mutable std::mutex current_mu_;
  std::shared_ptr<const topology::State> current_;  // what GET answers from
  size_t current_errors_ = 0;
  size_t current_without_sidecar_ = 0;

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace memha::app
