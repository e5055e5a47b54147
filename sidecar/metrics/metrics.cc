#include "sidecar/metrics/metrics.h"

#include <prometheus/text_serializer.h>

namespace memha {

std::string_view ToString(Outcome o) {
  static constexpr std::string_view kNames[] = {"hit", "miss", "ok", "not_applied", "client_error", "server_error"};
  return kNames[static_cast<size_t>(o)];
}

std::string_view ToString(MemberHealth h) {
  switch (h) {
    case MemberHealth::kDown: return "down";
    case MemberHealth::kUp: return "up";
    case MemberHealth::kWarming: return "warming";
    case MemberHealth::kReplaying: return "replaying";
  }
  return "?";
}

PoolMetrics::PoolMetrics(prometheus::Family<prometheus::Counter>* failovers, const std::string& pool)
    : failovers_family_(failovers) {
  for (size_t i = 1; i < failovers_.size(); ++i) {
    failovers_[i] = &failovers->Add({{"pool", pool}, {"reason", std::string(ToString(static_cast<OpStatus>(i)))}});
  }
}

PoolMetrics::~PoolMetrics() {
  for (prometheus::Counter* c : failovers_) {
    if (c != nullptr) failovers_family_->Remove(c);
  }
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using namespace prometheus;
  BuildGauge().Name("memha_build_info").Help("Always 1; the memha-sidecar version in its label")
      .Register(*registry_).Add({{"version", MEMHA_VERSION}}).Set(1);
  auto& requests = BuildCounter().Name("memha_requests_total")
                       .Help("Client requests by command and what the client saw").Register(*registry_);
  for (size_t c = 0; c < requests_.size(); ++c) {
    for (size_t o = 0; o < requests_[c].size(); ++o) {
      requests_[c][o] = &requests.Add({{"command", std::string(protocol::CommandName(static_cast<protocol::Command>(c)))},
                                       {"result", std::string(ToString(static_cast<Outcome>(o)))}});
    }
  }
  auto& latency = BuildHistogram().Name("memha_request_duration_seconds")
                      .Help("Time from a complete client request to its reply being ready").Register(*registry_);
  const Histogram::BucketBoundaries buckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
  latency_[0] = &latency.Add({{"kind", "read"}}, buckets);
  latency_[1] = &latency.Add({{"kind", "write"}}, buckets);
  latency_[2] = &latency.Add({{"kind", "other"}}, buckets);
  auto& errors = BuildCounter().Name("memha_backend_errors_total")
                     .Help("Backend operations that got no reply, by reason").Register(*registry_);
  failovers_family_ = &BuildCounter().Name("memha_failovers_total")
                           .Help("Requests of a pool served by its backup because the primary could not, by reason")
                           .Register(*registry_);
  for (size_t i = 1; i < backend_errors_.size(); ++i) {
    backend_errors_[i] = &errors.Add({{"reason", std::string(ToString(static_cast<OpStatus>(i)))}});
  }
  backend_errors_[0] = nullptr;
  member_state_family_ = &BuildGauge().Name("memha_member_state")
                              .Help("Sidecar's view of a member of a pool (role primary or backup): 0 down (or taken "
                                    "out by the controller), 1 up, 2 warming, 3 replaying")
                              .Register(*registry_);
  client_protocol_errors_ = &BuildCounter().Name("memha_client_protocol_errors_total")
                                 .Help("Malformed or refused client input").Register(*registry_).Add({});
  mirror_queue_depth_ = &BuildGauge().Name("memha_mirror_queue_depth")
                             .Help("Async mirror writes in flight to backup members").Register(*registry_).Add({});
  auto& mirror = BuildCounter().Name("memha_mirror_writes_total").Help("Mirror writes to the backup pool by result")
                     .Register(*registry_);
  mirror_dropped_ = &mirror.Add({{"result", "deferred"}});  // not sent at once: queued for repair
  mirror_failed_ = &mirror.Add({{"result", "failed"}});
  mirror_verified_ = &mirror.Add({{"result", "verified"}});
  mirror_recopied_ = &mirror.Add({{"result", "recopied"}});
  mirror_invalidated_ = &mirror.Add({{"result", "invalidated"}});
  repairs_done_ = &BuildCounter().Name("memha_mirror_repairs_total")
                       .Help("Keys copied from the primary to the backup by the repair queue")
                       .Register(*registry_).Add({});
  repair_queue_ = &BuildGauge().Name("memha_mirror_repair_queue")
                       .Help("Keys waiting to be copied from their primary to a backup member that missed a mirror")
                       .Register(*registry_).Add({});
  moved_key_checks_ = &BuildCounter().Name("memha_moved_key_checks_total")
                           .Help("Copies of keys a topology change moved onto a primary that predate the change, "
                                 "checked against the backup (replaced by its value or deleted)")
                           .Register(*registry_).Add({});
  auto& warmup = BuildCounter().Name("memha_warmup_total")
                     .Help("Warm-up: misses on a warming primary looked up on the backup, and values written back")
                     .Register(*registry_);
  warmup_lookups_ = &warmup.Add({{"event", "lookup"}});
  warmup_fills_ = &warmup.Add({{"event", "fill"}});
  auto& replay = BuildCounter().Name("memha_replay_total")
                     .Help("Missed invalidations replayed to returning members, and flushes after log overflow")
                     .Register(*registry_);
  replayed_ = &replay.Add({{"event", "invalidation"}});
  replay_flushes_ = &replay.Add({{"event", "flush"}});
  missed_writes_ = &BuildCounter().Name("memha_missed_writes_total")
                        .Help("Writes a member missed and will have invalidated before it serves again")
                        .Register(*registry_).Add({});
  client_connections_ = &BuildGauge().Name("memha_client_connections").Help("Open client connections")
                             .Register(*registry_).Add({});
  buffered_reply_bytes_ = &BuildGauge().Name("memha_buffered_reply_bytes")
                               .Help("Reply bytes held for clients that have not read them yet (all clients)")
                               .Register(*registry_).Add({});
  replies_deferred_ = &BuildCounter().Name("memha_replies_deferred_total")
                           .Help("Read replies dropped because their client held its share of memory, read again "
                                 "once the request was next in line")
                           .Register(*registry_).Add({});
  client_connections_total_ = &BuildCounter().Name("memha_client_connections_total")
                                   .Help("Client connections accepted").Register(*registry_).Add({});
  auto& topo = BuildGauge().Name("memha_topology_generation").Help("Epoch and version of the topology in force")
                   .Register(*registry_);
  topology_epoch_ = &topo.Add({{"part", "epoch"}});
  topology_version_ = &topo.Add({{"part", "version"}});
  auto& updates = BuildCounter().Name("memha_topology_updates_total").Help("Topology updates by result")
                      .Register(*registry_);
  topology_accepted_ = &updates.Add({{"result", "accepted"}});
  topology_rejected_ = &updates.Add({{"result", "rejected"}});
}

std::string Metrics::Serialize() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

void Metrics::Request(protocol::Command cmd, Outcome outcome, double seconds) {
  requests_[static_cast<size_t>(cmd)][static_cast<size_t>(outcome)]->Increment();
  size_t kind = protocol::IsRetrieval(cmd) || cmd == protocol::Command::kMetaGet ? 0
                : (protocol::IsStorage(cmd) || cmd == protocol::Command::kDelete || cmd == protocol::Command::kIncr ||
                   cmd == protocol::Command::kDecr || cmd == protocol::Command::kTouch ||
                   cmd == protocol::Command::kMetaSet || cmd == protocol::Command::kMetaDelete ||
                   cmd == protocol::Command::kMetaArithmetic)
                    ? 1
                    : 2;
  latency_[kind]->Observe(seconds);
}

std::shared_ptr<PoolMetrics> Metrics::ForPool(const std::string& pool) {
  std::lock_guard lock(pools_mu_);
  for (auto it = pools_.begin(); it != pools_.end();) {  // forget pools whose series are gone
    it = it->second.expired() ? pools_.erase(it) : std::next(it);
  }
  if (auto live = pools_[pool].lock()) return live;
  std::shared_ptr<PoolMetrics> created(new PoolMetrics(failovers_family_, pool));
  pools_[pool] = created;
  return created;
}

prometheus::Gauge& Metrics::MemberState(const std::string& pool, std::string_view role, const std::string& member,
                                        const std::string& address) {
  return member_state_family_->Add({{"pool", pool}, {"role", std::string(role)}, {"member", member},
                                    {"address", address}});
}

void Metrics::RemoveMemberState(prometheus::Gauge* gauge) { member_state_family_->Remove(gauge); }

}  // namespace memha
