#pragma once
// A memcached member as the sidecar sees it: its connections, its health (up / down / replaying / warming),
// and the invalidations it missed while unreachable. Keyed by address: a pod that returns with a new IP is a
// new, cold member; one that returns on the same address replays what it missed, then warms.
#include <memory>
#include <string>
#include <string_view>
#include <deque>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/topology.h"
#include "sidecar/backend/connection.h"
#include "sidecar/backend/tunables.h"
#include "sidecar/metrics/metrics.h"

namespace memha {

struct BackendEnv {
  event_base* base = nullptr;
  evdns_base* dns = nullptr;
  const Tunables* tunables = nullptr;
  Metrics* metrics = nullptr;
  FlushQueue* flush = nullptr;  // output written once per loop pass
};

class Member : public BackendConnection::Listener {
 public:
  Member(const BackendEnv& env, std::string name, HostPort endpoint, MemberHealth initial);
  ~Member() override;

  const std::string& name() const { return name_; }
  const HostPort& endpoint() const { return endpoint_; }
  MemberHealth health() const { return health_; }
  bool controller_down() const { return controller_down_; }
  // Serves requests: up or warming, and not taken out by the controller.
  bool Usable() const {
    return !controller_down_ && (health_ == MemberHealth::kUp || health_ == MemberHealth::kWarming);
  }
  bool Warming() const { return health_ == MemberHealth::kWarming; }
  size_t connection_count() const { return conns_.size(); }

  // Sends on the connection chosen by `hash`, so requests for one key stay in order.
  void Send(uint32_t hash, const protocol::MemberWire& wire, protocol::ReplyKind kind, OpCallback done);
  // The common case: one meta command line, no value.
  void SendMeta(uint32_t hash, std::string_view line, OpCallback done) {
    Send(hash, protocol::MemberWire{line, {}, std::string_view::npos}, protocol::ReplyKind::kMeta, std::move(done));
  }

  // A write this member did not apply (it was down, timed out or the mirror was dropped): invalidate the key
  // before the member serves again. Overflow of the bounded log turns into a flush on return.
  void RecordMissed(std::string_view key);
  void RecordMissedAll();
  size_t missed_count() const { return missed_.size(); }

  // Repair queue (as a backup member that is up): keys whose mirror could not be sent or did not complete. The
  // pool's repairer copies each from its primary, proven by CAS (router/replicate.h), while this member serves.
  // Bounded by the replay log limit; beyond it the member is resynced (taken out, flushed, put back).
  void RecordRepair(std::string_view key);
  bool HasRepairs() const { return !repair_.empty(); }
  std::string PopRepair();
  size_t repair_count() const { return repair_.size(); }

  void SetControllerState(MemberState state);
  // Where the topology uses this member: (pool, role) pairs, each one memha_member_state series. Empty: none
  // (a retiring member).
  using Place = std::pair<std::string, std::string_view>;
  void SetPlaces(std::vector<Place> places);
  // The controller's bulk refill of this member (docs/ARCHITECTURE.md "Bulk refill"): when it turns "done", a
  // warming member has its share back and is warm at once (reads stop being looked up on the backup).
  void SetRefill(MemberRefill refill);
  void NoteWarmupRead() { ++warm_reads_; }  // a key read on this member while it warms
  void NoteWarmupLookup(bool found_on_backup);
  void Tick(Clock::time_point now);
  bool Idle() const;
  void DropPending();  // at exit: forget every request in flight without running its callback

  size_t mirror_in_flight = 0;  // async mirror writes outstanding (as a backup member)

  // Per-key order of mirror writes (as a backup member): a write whose mirror is only known after the primary
  // answered (add, replace, cas, append, incr, ...) takes a ticket when it is dispatched; every later mirror of
  // the same key waits for the tickets before it, so the backup applies a key's writes in the order the primary
  // did. Release() gives the ticket its send action (or none: nothing to mirror) and sends what is due.
  uint64_t TakeMirrorTicket(std::string_view key);
  bool HasMirrorTickets(std::string_view key) const { return !tickets_.empty() && tickets_.count(std::string(key)); }
  void ReleaseMirrorTicket(std::string_view key, uint64_t ticket, std::function<void()> send);
  std::weak_ptr<bool> alive_token() const { return alive_; }

  // Per-key write gate (as a primary): a delete that deletes again once the backup has deleted (router/write.cc)
  // holds the key's later writes until that second delete is sent, so it cannot undo them. Waiters run in order.
  void HoldWrites(std::string_view key) { ++gates_[std::string(key)].holds; }
  bool WritesHeld(std::string_view key) const {
    if (gates_.empty()) return false;
    auto it = gates_.find(std::string(key));
    return it != gates_.end() && it->second.holds > 0;
  }
  void WaitForWrites(std::string_view key, std::function<void()> go) {
    gates_[std::string(key)].waiters.push_back(std::move(go));
  }
  void ReleaseWrites(std::string_view key);

  // A key as a member reads it on a meta command line: as is, or base64 (then *base64 = true) when it has bytes
  // a text line cannot carry.
  static std::string WireKey(std::string_view key, bool* base64);

 private:
  void MarkDown(OpStatus why);
  void StartProbe();
  void OnProbeDone(bool ok);
  void StartReplay();
  void ReplayBatch();
  void SetHealth(MemberHealth h);
  void MoveRepairsToMissed();
  void CloseAll(OpStatus why);
  void OnConnectionFailed(BackendConnection* conn, OpStatus why) override;
  void OnReplyReceived(BackendConnection*) override { consecutive_failures_ = 0; }
  Clock::time_point Deadline() const;

  BackendEnv env_;
  std::string name_;
  HostPort endpoint_;
  std::vector<std::unique_ptr<BackendConnection>> conns_;
  MemberHealth health_;
  bool controller_down_ = false;
  MemberRefill refill_ = MemberRefill::kNone;
  int consecutive_failures_ = 0;
  bool probing_ = false;
  bool settling_ = false;           // answered a probe; replay starts at replay_at_
  Clock::time_point replay_at_{};
  Clock::time_point next_probe_{};
  Clock::duration probe_wait_;
  Clock::time_point healthy_since_{};
  Clock::time_point warming_since_{};
  size_t warm_reads_ = 0;
  size_t warm_lookups_ = 0;
  size_t warm_found_ = 0;
  std::unordered_set<std::string> missed_;
  std::unordered_set<std::string> repair_;
  struct MirrorTicket {
    uint64_t id;
    bool released = false;
    std::function<void()> send;
  };
  std::unordered_map<std::string, std::deque<MirrorTicket>> tickets_;
  struct WriteGate {
    int holds = 0;
    std::deque<std::function<void()>> waiters;
  };
  std::unordered_map<std::string, WriteGate> gates_;
  uint64_t next_ticket_ = 1;
  bool flush_needed_ = false;
  size_t replay_outstanding_ = 0;
  std::vector<Place> places_;
  std::vector<prometheus::Gauge*> state_gauges_;  // one per place
  void PublishState();
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards callbacks that outlive the member
};

}  // namespace memha
