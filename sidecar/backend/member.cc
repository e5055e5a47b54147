#include "sidecar/backend/member.h"

#include <algorithm>

#include "common/log.h"

namespace memha {
namespace {

constexpr size_t kReplayBatch = 256;

bool TextSafeKey(std::string_view key) {
  for (unsigned char c : key) {
    if (c <= ' ' || c == 0x7f) return false;
  }
  return !key.empty();
}

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = uint32_t(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) n |= uint32_t(static_cast<unsigned char>(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= uint32_t(static_cast<unsigned char>(in[i + 2]));
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kAlphabet[n & 63] : '=');
  }
  return out;
}

}  // namespace

Member::Member(const BackendEnv& env, std::string name, HostPort endpoint, MemberHealth initial)
    : env_(env), name_(std::move(name)), endpoint_(std::move(endpoint)), health_(initial),
      probe_wait_(env.tunables->probe_interval) {
  for (int i = 0; i < env_.tunables->connections_per_member; ++i) {
    conns_.push_back(std::make_unique<BackendConnection>(env_.base, env_.dns, env_.flush, endpoint_, this));
  }
  auto now = Clock::now();
  warming_since_ = now;  // healthy_since_ stays unset: only a member that came back can flap
  if (health_ == MemberHealth::kDown) next_probe_ = now;
}

Member::~Member() {
  *alive_ = false;
  env_.metrics->repair_queue().Decrement(static_cast<double>(repair_.size()));
  auto dropped = std::move(tickets_);  // their jobs see the member gone (alive_token) and leave it alone
  dropped.clear();
  auto gates = std::move(gates_);
  gates.clear();
  for (prometheus::Gauge* g : state_gauges_) env_.metrics->RemoveMemberState(g);
}

void Member::SetPlaces(std::vector<Place> places) {
  std::sort(places.begin(), places.end());
  places.erase(std::unique(places.begin(), places.end()), places.end());  // names sharing an address
  if (places == places_) return;
  for (prometheus::Gauge* g : state_gauges_) env_.metrics->RemoveMemberState(g);
  state_gauges_.clear();
  places_ = std::move(places);
  for (const auto& [pool, role] : places_) {
    state_gauges_.push_back(&env_.metrics->MemberState(pool, role, name_, endpoint_.ToString()));
  }
  PublishState();
}

void Member::PublishState() {
  double v = controller_down_ ? 0.0 : static_cast<double>(health_);
  for (prometheus::Gauge* g : state_gauges_) g->Set(v);
}

Clock::time_point Member::Deadline() const { return Clock::now() + env_.tunables->request_timeout; }

void Member::Send(uint32_t hash, const protocol::MemberWire& wire, protocol::ReplyKind kind, OpCallback done) {
  conns_[hash % conns_.size()]->Send(wire, kind, Deadline(), std::move(done));
}

void Member::SetHealth(MemberHealth h) {
  if (h == health_) return;
  MEMHA_LOG(kInfo, "member", name_ << " (" << endpoint_.ToString() << ") " << ToString(health_) << " -> "
                                   << ToString(h));
  health_ = h;
  auto now = Clock::now();
  if (h == MemberHealth::kWarming) {
    warming_since_ = now;
    warm_reads_ = warm_lookups_ = warm_found_ = 0;
  }
  if (h == MemberHealth::kWarming || h == MemberHealth::kUp) {
    if (healthy_since_ == Clock::time_point{}) healthy_since_ = now;
  }
  PublishState();
}

void Member::CloseAll(OpStatus why) {
  for (auto& c : conns_) c->Close(why);
}

void Member::MarkDown(OpStatus why) {
  settling_ = false;
  if (health_ == MemberHealth::kDown) return;
  auto now = Clock::now();
  const Tunables& t = *env_.tunables;
  // Flapping (down again soon after coming back) doubles the wait before the next probe, up to the cap.
  bool flapping = healthy_since_ != Clock::time_point{} && now - healthy_since_ < t.flap_window;
  probe_wait_ = flapping ? std::min<Clock::duration>(probe_wait_ * 2, t.probe_backoff_cap)
                         : Clock::duration(t.probe_interval);
  healthy_since_ = Clock::time_point{};
  next_probe_ = now + probe_wait_;
  MoveRepairsToMissed();
  consecutive_failures_ = 0;
  SetHealth(MemberHealth::kDown);
  MEMHA_LOG(kWarn, "member", name_ << " marked down: " << ToString(why) << ", next probe in "
                                   << std::chrono::duration_cast<std::chrono::milliseconds>(probe_wait_).count()
                                   << "ms");
  CloseAll(why);
}

void Member::OnConnectionFailed(BackendConnection*, OpStatus why) {
  env_.metrics->BackendError(why);
  if (health_ == MemberHealth::kDown || controller_down_) return;
  if (why == OpStatus::kTimeout && ++consecutive_failures_ < env_.tunables->failure_limit) return;
  MarkDown(why);
}

void Member::StartProbe() {
  probing_ = true;
  auto deadline = Clock::now() + env_.tunables->connect_timeout + env_.tunables->request_timeout;
  std::weak_ptr<bool> alive = alive_;
  conns_[0]->Send(protocol::MemberWire{"mn"}, protocol::ReplyKind::kNoop, deadline, [this, alive](const OpResult& r) {
    if (alive.expired()) return;
    OnProbeDone(r.status == OpStatus::kOk);
  });
}

void Member::OnProbeDone(bool ok) {
  probing_ = false;
  if (controller_down_ || health_ != MemberHealth::kDown) return;
  if (!ok) {
    probe_wait_ = std::min<Clock::duration>(probe_wait_ * 2, env_.tunables->probe_backoff_cap);
    next_probe_ = Clock::now() + probe_wait_;
    CloseAll(OpStatus::kConnectFailed);
    return;
  }
  // A member that was frozen may still execute writes queued on its old sockets once it thaws. Let those run
  // before replaying, so a replayed invalidation is never overtaken by a stale write.
  settling_ = true;
  replay_at_ = Clock::now() + env_.tunables->request_timeout;
  MEMHA_LOG(kInfo, "member", name_ << " answers again; replaying " << missed_.size() << " missed invalidations"
                                   << (flush_needed_ ? " after a flush" : ""));
}

void Member::StartReplay() {
  SetHealth(MemberHealth::kReplaying);
  if (flush_needed_) {
    std::weak_ptr<bool> alive = alive_;
    replay_outstanding_ = 1;
    conns_[0]->Send(protocol::MemberWire{"flush_all"}, protocol::ReplyKind::kFenced, Deadline(),
                    [this, alive](const OpResult& r) {
      if (alive.expired() || health_ != MemberHealth::kReplaying) return;
      replay_outstanding_ = 0;
      if (r.status != OpStatus::kOk) return;  // the connection failure marks it down
      if (r.reply->line.in(r.buf) != "OK") {
        // It missed more writes than the log holds and refuses to be flushed (memcached -F): it may hold values
        // older than acknowledged writes, so it stays out of service, and the flush is retried after a backoff.
        MEMHA_LOG(kError, "member", name_ << " missed writes but refuses flush_all (" << r.reply->line.in(r.buf)
                                          << "); kept out of service, retrying");
        env_.metrics->BackendError(OpStatus::kBadReply);
        SetHealth(MemberHealth::kDown);
        next_probe_ = Clock::now() + env_.tunables->probe_backoff_cap;
        return;
      }
      flush_needed_ = false;
      missed_.clear();
      env_.metrics->replay_flushes().Increment();
      ReplayBatch();
    });
    return;
  }
  ReplayBatch();
}

void Member::ReplayBatch() {
  if (missed_.empty()) {
    SetHealth(MemberHealth::kWarming);
    return;
  }
  std::vector<std::string> batch;
  for (auto it = missed_.begin(); it != missed_.end() && batch.size() < kReplayBatch; ++it) batch.push_back(*it);
  replay_outstanding_ = batch.size();
  std::weak_ptr<bool> alive = alive_;
  for (std::string& key : batch) {
    bool base64 = false;
    std::string token = WireKey(key, &base64);
    std::string wire = protocol::ComposeDelete(token, base64);
    conns_[0]->Send(protocol::MemberWire{wire}, protocol::ReplyKind::kMeta, Deadline(),
                    [this, alive, key = std::move(key)](const OpResult& r) {
      if (alive.expired() || health_ != MemberHealth::kReplaying) return;
      if (r.status != OpStatus::kOk || r.reply->error) return;  // the member goes down; the key stays logged
      missed_.erase(key);
      env_.metrics->replayed_invalidations().Increment();
      if (--replay_outstanding_ == 0) ReplayBatch();
    });
  }
}

void Member::RecordMissed(std::string_view key) {
  env_.metrics->missed_writes().Increment();
  if (flush_needed_) return;
  if (missed_.size() >= env_.tunables->replay_log_limit && !missed_.count(std::string(key))) {
    RecordMissedAll();
    return;
  }
  missed_.emplace(key);
}

std::string Member::WireKey(std::string_view key, bool* base64) {
  *base64 = !TextSafeKey(key);
  return *base64 ? Base64Encode(key) : std::string(key);
}

void Member::RecordRepair(std::string_view key) {
  if (!Usable()) return RecordMissed(key);  // invalidated when it returns
  if (repair_.size() >= env_.tunables->replay_log_limit && !repair_.count(std::string(key))) {
    // More keys to repair than the log holds: the member cannot be trusted to hold the primaries' values.
    MEMHA_LOG(kError, "member", name_ << ": " << repair_.size()
                                      << " mirror writes waiting for repair; taking it out to flush it");
    repair_.clear();
    RecordMissedAll();
    MarkDown(OpStatus::kOverloaded);
    return;
  }
  if (repair_.emplace(key).second) env_.metrics->repair_queue().Increment();
}

void Member::MoveRepairsToMissed() {
  if (repair_.empty()) return;
  env_.metrics->repair_queue().Decrement(static_cast<double>(repair_.size()));
  auto keys = std::move(repair_);
  repair_.clear();
  for (const std::string& k : keys) RecordMissed(k);  // a member that is out gets them invalidated on return
}

std::string Member::PopRepair() {
  auto it = repair_.begin();
  std::string key = std::move(repair_.extract(it).value());
  env_.metrics->repair_queue().Decrement();
  return key;
}

void Member::RecordMissedAll() {
  if (!flush_needed_) MEMHA_LOG(kWarn, "member", name_ << " missed too much; it will be flushed on return");
  flush_needed_ = true;
  missed_.clear();
}

void Member::SetControllerState(MemberState state) {
  bool down = state != MemberState::kUp;
  if (down == controller_down_) return;
  controller_down_ = down;
  if (down) {
    MEMHA_LOG(kInfo, "member", name_ << " taken out by the controller (" << ToString(state) << ")");
    health_ = MemberHealth::kDown;
    PublishState();
    MoveRepairsToMissed();
    CloseAll(OpStatus::kMemberDown);
  } else {
    // Back in service: it may have restarted empty. Probe now, replay what it missed, then warm.
    MEMHA_LOG(kInfo, "member", name_ << " put back by the controller");
    health_ = MemberHealth::kDown;
    probing_ = false;
    settling_ = false;
    next_probe_ = Clock::now();
    probe_wait_ = env_.tunables->probe_interval;
    PublishState();
  }
}

void Member::SetRefill(MemberRefill refill) {
  MemberRefill before = refill_;
  refill_ = refill;
  // Only a refill this member was seen running ends its warm-up. A "done" it never saw running may belong to an
  // earlier incarnation: a pod recreated at a new address is a new member here, and the first topology naming it
  // can still carry the old pod's mark (found by the node tier: a rolling restart served empty members as warm).
  if (refill != MemberRefill::kDone || before != MemberRefill::kRunning) return;
  if (health_ == MemberHealth::kWarming) {
    MEMHA_LOG(kInfo, "member", name_ << " refilled by the controller: warm");
    SetHealth(MemberHealth::kUp);
  }
}

void Member::NoteWarmupLookup(bool found_on_backup) {
  ++warm_lookups_;
  if (found_on_backup) ++warm_found_;
}

uint64_t Member::TakeMirrorTicket(std::string_view key) {
  uint64_t id = next_ticket_++;
  tickets_[std::string(key)].push_back(MirrorTicket{id, false, nullptr});
  return id;
}

void Member::ReleaseMirrorTicket(std::string_view key, uint64_t ticket, std::function<void()> send) {
  auto it = tickets_.find(std::string(key));
  if (it == tickets_.end()) return;
  for (MirrorTicket& t : it->second) {
    if (t.id == ticket) {
      t.released = true;
      t.send = std::move(send);
      break;
    }
  }
  // Send what is due, in ticket order. A send may take or release tickets of this key: re-find the queue.
  std::string k(key);
  for (;;) {
    auto q = tickets_.find(k);
    if (q == tickets_.end()) return;
    if (q->second.empty()) {
      tickets_.erase(q);
      return;
    }
    if (!q->second.front().released) return;
    std::function<void()> due = std::move(q->second.front().send);
    q->second.pop_front();
    if (due) due();
  }
}

void Member::ReleaseWrites(std::string_view key) {
  std::string k(key);
  auto it = gates_.find(k);
  if (it == gates_.end()) return;
  if (it->second.holds > 0) --it->second.holds;
  // A waiter may hold the gate again (another delete): the rest wait for it. Re-find after each run.
  for (;;) {
    it = gates_.find(k);
    if (it == gates_.end()) return;
    if (it->second.holds > 0) return;
    if (it->second.waiters.empty()) {
      gates_.erase(it);
      return;
    }
    std::function<void()> go = std::move(it->second.waiters.front());
    it->second.waiters.pop_front();
    go();
  }
}

void Member::DropPending() {
  for (auto& c : conns_) c->DropPending();
}

bool Member::Idle() const {
  for (const auto& c : conns_) {
    if (!c->idle()) return false;
  }
  return true;
}

void Member::Tick(Clock::time_point now) {
  for (auto& c : conns_) c->CheckDeadlines(now, env_.tunables->connect_timeout);
  if (controller_down_) return;
  if (health_ == MemberHealth::kDown && settling_ && now >= replay_at_) {
    settling_ = false;
    StartReplay();
  } else if (health_ == MemberHealth::kDown && !probing_ && !settling_ && now >= next_probe_) {
    StartProbe();
  }
  if (health_ == MemberHealth::kWarming) {
    const Tunables& t = *env_.tunables;
    bool timed_out = now - warming_since_ >= t.warmup_max;
    // Warm once, in a window of reads of it, few had to be filled from the backup *and* the backup no longer
    // holds most of what it lacks. The second half keeps a hot set from ending warm-up early: its keys are filled
    // once and then hit here, while the long tail nobody has asked for yet is still on the backup only (its
    // misses keep finding it there). Windows, not totals, so what counts is the member now.
    bool caught_up = false;
    if (warm_reads_ >= t.warmup_min_reads) {
      caught_up = static_cast<double>(warm_found_) < t.warmup_exit_fill_ratio * static_cast<double>(warm_reads_) &&
                  2 * warm_found_ <= warm_lookups_;
      warm_reads_ = warm_lookups_ = warm_found_ = 0;
    }
    if (timed_out || caught_up) SetHealth(MemberHealth::kUp);
  }
}

}  // namespace memha
