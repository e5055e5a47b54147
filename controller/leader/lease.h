#pragma once
// Leader election on a coordination.k8s.io/v1 Lease (the algorithm of client-go's leaderelection):
// - A candidate takes the Lease when it is absent (create), released (no holder), or held by someone whose
//   renewals it has not *seen* for leaseDurationSeconds of its own steady clock: expiry is judged on local
//   observed time (when the Lease's record last changed for us), never on the renewTime's value, so clock skew
//   between nodes does not matter.
// - The leader renews every retry_period; if it cannot renew for renew_deadline (< lease_duration) it steps
//   down (on_stopped_leading: stop pushing) before anyone else may take over.
// - 409 Conflict (someone wrote in between) means: read again and retry, up to conflict_retries per attempt.
// - Epoch: spec.leaseTransitions, incremented by every new leader when it starts leading (also a process that
//   re-acquires under the same identity), so (epoch, version) of pushes always grows across leaders.
// - Release on shutdown: holderIdentity cleared and leaseDurationSeconds 1, so a successor takes over at once.
//
//   kube::LeaderElector elector(*lease_api, {.ns = pod_ns, .identity = pod_name + "_" + random},
//       {.on_started_leading = [&](uint64_t epoch) { pusher.Lead(epoch); },
//        .on_stopped_leading = [&] { pusher.Pause(); }});
//   std::thread t([&] { elector.Run(); });   ...  elector.Stop(); t.join();   // join = released
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "controller/kube/api.h"
#include "controller/kube/clock.h"

namespace memha::leader {

struct LeaseOptions {
  std::string ns = "default";
  std::string name = "memha-controller";
  std::string identity;  // unique per process (e.g. pod name + "_" + random suffix); required
  kube::Duration lease_duration = std::chrono::seconds(15);
  kube::Duration renew_deadline = std::chrono::seconds(10);
  kube::Duration retry_period = std::chrono::seconds(2);
  int conflict_retries = 3;
  Status Validate() const;
};

struct LeaderCallbacks {
  std::function<void(uint64_t epoch)> on_started_leading;
  std::function<void()> on_stopped_leading;
  std::function<void(const std::string& holder)> on_new_leader;  // observed holder changed ("" = none)
};

// Plain counters for the metrics module.
struct LeaderCounters {
  std::atomic<uint64_t> acquisitions{0};    // times this process started leading
  std::atomic<uint64_t> step_downs{0};      // times it stopped leading (lost, deadline, shutdown)
  std::atomic<uint64_t> failed_attempts{0}; // attempts that ended in a transport/API error
  std::atomic<uint64_t> conflicts{0};       // 409 answers
};

// The spec fields of a Lease the elector reads, plus its resourceVersion.
struct LeaseRecord {
  std::string holder;
  int64_t duration_seconds = 0;
  std::string acquire_time;
  std::string renew_time;
  int64_t transitions = 0;
  std::string resource_version;
};
LeaseRecord ParseLease(const nlohmann::json& lease);

class LeaderElector {
 public:
  LeaderElector(kube::KubeApi& api, LeaseOptions options, LeaderCallbacks callbacks,
                kube::Clock& clock = kube::RealClock::Instance());

  void Run();   // Tick() every retry_period (candidates: jittered up to +20%) until Stop(); then Release()
  void Stop();  // any thread
  void Tick();  // one acquire-or-renew attempt and the leading/not-leading transition it implies
  Status Release();  // steps down (callback first) and hands the Lease back if we hold it

  bool IsLeader() const { return leading_.load(); }
  uint64_t Epoch() const { return epoch_.load(); }  // the leaseTransitions we lead with; 0 = never led
  std::string ObservedHolder() const;
  const LeaderCounters& counters() const { return counters_; }

  // Tests: the wall clock written into acquireTime/renewTime (never used for decisions).
  void SetWallClock(std::function<std::chrono::system_clock::time_point()> now) { wall_ = std::move(now); }

 private:
  enum class Attempt { kLeading, kHeldByOther, kError };
  Attempt TryAcquireOrRenew(kube::SteadyTime now);
  Attempt Create(kube::SteadyTime now, bool* conflict);
  void Observe(const LeaseRecord& record, kube::SteadyTime now);
  void StepDown(const char* why);
  std::string LeasePath() const;

  kube::KubeApi& api_;
  const LeaseOptions options_;
  const LeaderCallbacks callbacks_;
  kube::Clock& clock_;
  kube::StopSignal stop_;
  std::function<std::chrono::system_clock::time_point()> wall_ = [] { return std::chrono::system_clock::now(); };
  std::mt19937_64 rng_{std::random_device{}()};
  LeaderCounters counters_;

  std::atomic<bool> leading_{false};
  std::atomic<uint64_t> epoch_{0};
  mutable std::mutex mu_;  // observed_
  LeaseRecord observed_;
  bool have_observed_ = false;
  kube::SteadyTime observed_at_{};
  kube::SteadyTime last_renew_{};
  uint64_t pending_epoch_ = 0;
};

}  // namespace memha::leader
