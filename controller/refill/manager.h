#pragma once
// Which members need a refill, and running those refills one at a time (docs/ARCHITECTURE.md "Bulk refill").
//
// Detection (a thread of its own, leader only, every `probe_interval`): `stats` on every up member of every pool
// that has a backup. A member needs a refill when, with items in the other pool,
//   - its memcached `uptime` went down since the last probe (the process restarted: it is empty), or
//   - its address changed (a new pod under the same name), or
//   - on first sight (a new member, or a new leader), it holds under a tenth of its expected share
//     (the other pool's items / its pool's ring size).
// Handover (on the reconcile thread, before the new topology is pushed): when a pool's ring changes, every up
// member that gains keys gets a fence (`ms memha:fence:controller ... c`: the CAS its memcached gives now) and a
// handover job after `handover_delay`: its copies of the moved keys from before the change are checked against the
// other pool, then what it lacks is copied (docs/ARCHITECTURE.md "Scaling").
// Work (another thread): one refill at a time (the rate limits are the controller's total), failures retried from
// the cursor with backoff, abandoned when the pools change under it (the target, its ring or its peers) and then
// started over with the new topology; everything is dropped when leadership is lost.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/status.h"
#include "common/topology.h"
#include "controller/refill/refill.h"

namespace memha::refill {

using SteadyClock = std::chrono::steady_clock;

// One primary pool and its backup pool, as the reconciler computed them (members in ring order).
struct PoolPair {
  std::string pool;            // primary Service "ns/name"
  std::string backup_service;  // backup Service "ns/name"
  std::vector<MemberSpec> primary;
  std::vector<MemberSpec> backup;
  bool operator==(const PoolPair&) const = default;
};

struct MemberStats {
  uint64_t uptime = 0;
  uint64_t curr_items = 0;
};
using StatsProbe = std::function<Result<MemberStats>(const std::string& address, std::chrono::milliseconds timeout)>;
// `stats` over a fresh connection.
Result<MemberStats> ProbeStats(const std::string& address, std::chrono::milliseconds timeout);
// The CAS a member gives an item stored now: every item stored on it before has a CAS at or below it.
using FenceProbe = std::function<Result<uint64_t>(const std::string& address, std::chrono::milliseconds timeout)>;
Result<uint64_t> TakeFence(const std::string& address, std::chrono::milliseconds timeout);

struct ManagerOptions {
  bool enabled = true;
  RefillLimits limits;
  std::chrono::milliseconds probe_interval{10000};
  std::chrono::milliseconds probe_timeout{1000};
  std::chrono::milliseconds retry_base{1000};  // doubled per failed attempt, up to retry_max
  std::chrono::milliseconds retry_max{60000};
  int max_attempts = 5;
  bool handover = true;                            // ring changes: check and copy the moved keys
  std::chrono::milliseconds handover_delay{3000};  // ring change -> handover start (the push reaches the sidecars)
  Status Validate() const;
};

enum class TargetState { kPending, kRunning, kDone, kFailed };
std::string_view ToString(TargetState state);

struct TargetStatus {
  std::string pool;     // primary Service
  std::string role;     // "primary" | "backup"
  std::string service;  // the Service the member belongs to
  std::string member;
  TargetState state = TargetState::kPending;
  std::string reason;   // why it was refilled: "restarted", "new address", "empty", "ring change"
  uint64_t owned = 0;
  uint64_t processed = 0;
  int attempts = 0;
  std::string error;    // the last failure
};

// Sidecar-facing marks, by Service then member name.
using RefillMarks = std::map<std::string, std::map<std::string, MemberRefill>>;

class RefillManager {
 public:
  // Kubernetes Events about a pool (its primary Service): reason RefillStarted/RefillCompleted/RefillFailed.
  using EventSink = std::function<void(const std::string& service, bool warning, const std::string& reason,
                                       const std::string& message)>;

  explicit RefillManager(ManagerOptions options, StatsProbe probe = ProbeStats, EventSink events = nullptr,
                         FenceProbe fence = TakeFence);
  ~RefillManager();

  void Start();  // the detector and worker threads (nothing happens until leading)
  void Stop();

  void SetLeading(bool leading);  // losing it cancels the running refill and forgets everything
  // The pools as computed by a reconcile pass, before it pushes them. A ring that changed since the last call gets
  // its handovers (leader only; fences are taken here, synchronously, at most `probe_timeout` per member).
  void UpdatePools(std::vector<PoolPair> pools);
  void SetOnMarksChanged(std::function<void()> callback);

  // One detection pass on the caller's thread (tests; the detector thread calls it).
  void DetectOnce();

  std::vector<TargetStatus> Status() const;
  RefillMarks Marks() const;
  const RefillCounters& counters() const { return counters_; }
  uint64_t Runs(RefillOutcome outcome) const { return runs_[static_cast<size_t>(outcome)].load(); }
  uint64_t Handovers() const { return handovers_.load(); }  // handover jobs created (ring changes x members)
  // The target being copied now: keys owned on the peers dumped so far, and keys handled.
  std::pair<uint64_t, uint64_t> RunningProgress() const;
  size_t Targets(TargetState state) const;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // pool, role, member
  struct Target {
    RefillJob job;
    std::string service;
    TargetState state = TargetState::kPending;
    std::string reason;
    RefillCursor cursor;
    int attempts = 0;
    std::string error;
    SteadyClock::time_point next_try{};
    std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
    uint64_t generation = 0;
  };
  struct Seen {
    std::string address;
    uint64_t uptime = 0;
  };

  void NoteRingChanges(const std::vector<PoolPair>& pools);
  void DetectLoop();
  void WorkLoop();
  // The job for `member` of `role` in `pair` now, nullopt when it cannot run (member gone or not up, no peer up).
  static std::optional<RefillJob> BuildJob(const PoolPair& pair, const std::string& role, const std::string& member);
  void NotifyMarks();
  void Event(const std::string& service, bool warning, const std::string& reason, const std::string& message);

  const ManagerOptions options_;
  StatsProbe probe_;
  EventSink events_;
  FenceProbe fence_;
  RefillCounters counters_;
  std::atomic<uint64_t> handovers_{0};
  std::array<std::atomic<uint64_t>, 3> runs_{};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> running_owned_{0}, running_processed_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool leading_ = false;
  std::vector<PoolPair> pools_;
  std::map<Key, Target> targets_;
  std::map<Key, Seen> seen_;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> rings_;  // (pool, role) -> last ring
  uint64_t next_generation_ = 1;
  std::function<void()> on_marks_changed_;
  std::thread detector_, worker_;
};

}  // namespace memha::refill
