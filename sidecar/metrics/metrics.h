#pragma once
// Prometheus metrics of the sidecar. Counters are created up front so the data path only does an atomic add.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sidecar/backend/failure.h"
#include "sidecar/protocol/request.h"

namespace memha {

// What a client saw. Closed set; also the `result` label.
enum class Outcome : uint8_t { kHit, kMiss, kOk, kNotApplied, kClientError, kServerError, kCount };
std::string_view ToString(Outcome o);

// Sidecar's own view of a member; the value of memha_member_state.
enum class MemberHealth : uint8_t { kDown = 0, kUp = 1, kWarming = 2, kReplaying = 3 };
std::string_view ToString(MemberHealth h);

// What a member is to a pool; the `role` label.
inline constexpr std::string_view kRolePrimary = "primary";
inline constexpr std::string_view kRoleBackup = "backup";

// The series of one pool (label `pool`). They exist while a Pool object holds this, i.e. while the pool is in the
// topology or a request routed through it is still in flight; then they are removed.
class PoolMetrics {
 public:
  ~PoolMetrics();
  PoolMetrics(const PoolMetrics&) = delete;
  PoolMetrics& operator=(const PoolMetrics&) = delete;
  void Failover(OpStatus why) { failovers_[static_cast<size_t>(why)]->Increment(); }

 private:
  friend class Metrics;
  explicit PoolMetrics(prometheus::Family<prometheus::Counter>* failovers, const std::string& pool);
  prometheus::Family<prometheus::Counter>* failovers_family_;
  std::array<prometheus::Counter*, static_cast<size_t>(OpStatus::kCount)> failovers_{};
};

class Metrics {
 public:
  Metrics();
  std::string Serialize() const;

  void Request(protocol::Command cmd, Outcome outcome, double seconds);
  void ClientProtocolError() { client_protocol_errors_->Increment(); }
  void BackendError(OpStatus why) { backend_errors_[static_cast<size_t>(why)]->Increment(); }

  // The counters of pool `pool` ("ns/name"): the same object while any holder is alive.
  std::shared_ptr<PoolMetrics> ForPool(const std::string& pool);

  // The state of `member` in pool `pool` as `role` (kRolePrimary / kRoleBackup): one gauge per place a member has.
  prometheus::Gauge& MemberState(const std::string& pool, std::string_view role, const std::string& member,
                                 const std::string& address);
  void RemoveMemberState(prometheus::Gauge* gauge);

  prometheus::Gauge& mirror_queue_depth() { return *mirror_queue_depth_; }
  prometheus::Counter& mirror_dropped() { return *mirror_dropped_; }
  prometheus::Counter& mirror_failed() { return *mirror_failed_; }
  // What became of mirror writes (router/replicate.h): proven equal to the primary's value, copied again from
  // the primary after a newer write overtook them, or the key invalidated on the backup.
  prometheus::Counter& mirror_verified() { return *mirror_verified_; }
  prometheus::Counter& mirror_recopied() { return *mirror_recopied_; }
  prometheus::Counter& mirror_invalidated() { return *mirror_invalidated_; }
  prometheus::Counter& repairs_done() { return *repairs_done_; }
  prometheus::Gauge& repair_queue() { return *repair_queue_; }
  prometheus::Counter& moved_key_checks() { return *moved_key_checks_; }
  prometheus::Counter& warmup_lookups() { return *warmup_lookups_; }
  prometheus::Counter& warmup_fills() { return *warmup_fills_; }
  prometheus::Counter& replayed_invalidations() { return *replayed_; }
  prometheus::Counter& replay_flushes() { return *replay_flushes_; }
  prometheus::Counter& missed_writes() { return *missed_writes_; }
  prometheus::Gauge& client_connections() { return *client_connections_; }
  prometheus::Gauge& buffered_reply_bytes() { return *buffered_reply_bytes_; }
  prometheus::Counter& replies_deferred() { return *replies_deferred_; }
  prometheus::Counter& client_connections_total() { return *client_connections_total_; }
  prometheus::Gauge& topology_epoch() { return *topology_epoch_; }
  prometheus::Gauge& topology_version() { return *topology_version_; }
  prometheus::Counter& topology_updates(bool accepted) { return accepted ? *topology_accepted_ : *topology_rejected_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::array<std::array<prometheus::Counter*, static_cast<size_t>(Outcome::kCount)>,
             static_cast<size_t>(protocol::Command::kCount)> requests_{};
  std::array<prometheus::Histogram*, 3> latency_{};  // read, write, other
  std::array<prometheus::Counter*, static_cast<size_t>(OpStatus::kCount)> backend_errors_{};
  prometheus::Family<prometheus::Counter>* failovers_family_;
  std::mutex pools_mu_;  // pools_ (the loop thread creates, the last Pool holder may free elsewhere)
  std::map<std::string, std::weak_ptr<PoolMetrics>> pools_;
  prometheus::Family<prometheus::Gauge>* member_state_family_;
  prometheus::Counter* client_protocol_errors_;
  prometheus::Gauge* mirror_queue_depth_;
  prometheus::Counter* mirror_dropped_;
  prometheus::Counter* mirror_failed_;
  prometheus::Counter* mirror_verified_;
  prometheus::Counter* mirror_recopied_;
  prometheus::Counter* mirror_invalidated_;
  prometheus::Counter* repairs_done_;
  prometheus::Gauge* repair_queue_;
  prometheus::Counter* moved_key_checks_;
  prometheus::Counter* warmup_lookups_;
  prometheus::Counter* warmup_fills_;
  prometheus::Counter* replayed_;
  prometheus::Counter* replay_flushes_;
  prometheus::Counter* missed_writes_;
  prometheus::Gauge* client_connections_;
  prometheus::Gauge* buffered_reply_bytes_;
  prometheus::Counter* replies_deferred_;
  prometheus::Counter* client_connections_total_;
  prometheus::Gauge* topology_epoch_;
  prometheus::Gauge* topology_version_;
  prometheus::Counter* topology_accepted_;
  prometheus::Counter* topology_rejected_;
};

}  // namespace memha
