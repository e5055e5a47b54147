#pragma once
// The leader's pool status writer (docs/OPERATIONS.md "Pool status"): every `interval`, and after every reconcile
// pass, it computes each pool's status (pool_status.h) and stores what changed in one ConfigMap of the
// controller's namespace (`memha-status`, one key per pool: "<namespace>.<service>"), with a merge PATCH (the chart
// creates the ConfigMap, so that helm uninstall removes it; the controller cannot create it). Written only on change: members, phase or sidecars at once, refill progress
// at most every `progress_interval`. It also records Events on the pool Service for transitions: MemberDown,
// MemberUp (Normal), PoolUnavailable / PoolAvailable, SidecarsBehind (Warning, once per episode, after
// `behind_warning`). A new leader takes its first round as the baseline: it writes, but records no Event.
//
// Why a ConfigMap and not an annotation on each Service: writing an annotation needs `patch` on every Service in the
// cluster, which RBAC cannot narrow to one annotation: it would let the controller's identity rewrite any
// Service's selector. The ConfigMap needs patch on one named object in the controller's own namespace.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/kube/api.h"
#include "controller/status/pool_status.h"

namespace memha::status {

struct WriterOptions {
  std::string ns;                                       // the controller's namespace
  std::string config_map = "memha-status";              // empty: no status written (Events still recorded)
  std::chrono::milliseconds interval{2000};             // recomputed this often (acks arrive between passes)
  std::chrono::milliseconds progress_interval{10000};   // refill progress alone is written at most this often
  std::chrono::milliseconds behind_warning{30000};      // sidecars behind this long: one Warning Event
};

class StatusWriter {
 public:
  using EventSink = std::function<void(const std::string& service, bool warning, const std::string& reason,
                                       const std::string& message)>;
  using RefillSource = std::function<std::vector<refill::TargetStatus>()>;

  StatusWriter(kube::KubeApi& api, WriterOptions options, EventSink events, RefillSource refills, InSync in_sync);
  ~StatusWriter();

  // After every reconcile pass (the reconcile thread): the pools as computed and whether this replica leads.
  void Update(std::shared_ptr<const topology::State> state, bool leading);

  void Start();
  void Stop();

  // One round on the caller's thread (tests; the writer's thread calls it). `now` is written as lastChange.
  void RunOnce(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  uint64_t Writes() const { return writes_.load(); }      // ConfigMap writes that succeeded
  uint64_t Failures() const { return failures_.load(); }  // ... that failed (retried next round)
  // Pools by phase, as last computed (leader; 0 elsewhere).
  size_t Pools(const std::string& phase) const;

 private:
  struct Written {
    PoolStatus status;       // as last written (or computed, when the write failed: see dirty)
    std::string last_change;
    std::chrono::steady_clock::time_point written_at{};
    bool dirty = false;      // not stored yet
    std::chrono::steady_clock::time_point behind_since{};
    bool behind_warned = false;
  };
  void Loop();
  void Events(const PoolStatus& before, const PoolStatus& now);
  Status Store(const std::map<std::string, std::optional<std::string>>& changes);

  kube::KubeApi& api_;
  const WriterOptions options_;
  EventSink events_;
  RefillSource refills_;
  InSync in_sync_;
  std::atomic<uint64_t> writes_{0}, failures_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool poked_ = false;
  std::shared_ptr<const topology::State> state_;
  bool leading_ = false;
  std::map<std::string, size_t> phases_;
  std::thread thread_;

  // The writer's own (RunOnce is not re-entered: one thread, or the test's).
  bool baseline_ = false;                 // a round ran in this leadership term
  std::map<std::string, Written> written_;  // by Service
};

// The ConfigMap key of a pool Service "ns/name": "ns.name" (neither part can hold a dot).
std::string StatusKey(const std::string& service);

}  // namespace memha::status
