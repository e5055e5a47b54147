#include "controller/refill/manager.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "common/log.h"
#include "controller/refill/connection.h"

namespace memha::refill {
namespace {

constexpr std::string_view kPrimary = "primary";
constexpr std::string_view kBackup = "backup";

bool StatValue(std::string_view stats, std::string_view name, uint64_t* out) {
  std::string needle = "STAT " + std::string(name) + " ";
  size_t at = stats.find(needle);
  if (at == std::string_view::npos) return false;
  std::string_view rest = stats.substr(at + needle.size());
  rest = rest.substr(0, rest.find('\r'));
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), *out);
  return ec == std::errc() && end == rest.data() + rest.size();
}

std::string Progress(const RefillCursor& c) {
  return std::to_string(c.processed) + "/" + std::to_string(c.owned) + " keys";
}

}  // namespace

Result<MemberStats> ProbeStats(const std::string& address, std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  auto connection = MemberConnection::Connect(address, timeout);
  if (!connection.ok()) return connection.status();
  MemberConnection& c = *connection.value();
  if (Status s = c.Send("stats\r\n", deadline); !s.ok()) return s;
  while (c.buffer().find("END\r\n") == std::string_view::npos) {
    if (c.buffer().size() > (1 << 20)) return Status::Internal(address + ": stats reply too long");
    if (Status s = c.ReadMore(deadline); !s.ok()) return s;
  }
  MemberStats stats;
  if (!StatValue(c.buffer(), "uptime", &stats.uptime) || !StatValue(c.buffer(), "curr_items", &stats.curr_items)) {
    return Status::Internal(address + ": stats without uptime/curr_items");
  }
  return stats;
}

Result<uint64_t> TakeFence(const std::string& address, std::chrono::milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  auto connection = MemberConnection::Connect(address, timeout);
  if (!connection.ok()) return connection.status();
  MemberConnection& c = *connection.value();
  // A short TTL: the item is only wanted for its CAS.
  if (Status s = c.Send("ms memha:fence:controller 1 T10 c\r\n1\r\n", deadline); !s.ok()) return s;
  while (c.buffer().find("\r\n") == std::string_view::npos) {
    if (Status s = c.ReadMore(deadline); !s.ok()) return s;
  }
  std::string_view line = c.buffer().substr(0, c.buffer().find("\r\n"));
  uint64_t cas = 0;
  if (line.starts_with("HD c")) {
    std::string_view digits = line.substr(4);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cas);
    if (ec == std::errc() && end == digits.data() + digits.size() && cas > 0) return cas;
  }
  return Status::Internal(address + ": fence not stored: \"" + std::string(line.substr(0, 120)) + "\"");
}

Status ManagerOptions::Validate() const {
  if (Status s = limits.Validate(); !s.ok()) return s;
  if (probe_interval.count() <= 0) return Status::InvalidArgument("--refill-probe-interval must be positive");
  if (max_attempts < 1) return Status::InvalidArgument("refill attempts must be at least 1");
  if (handover_delay.count() < 0) return Status::InvalidArgument("--refill-handover-delay must not be negative");
  return Status::Ok();
}

std::string_view ToString(TargetState state) {
  switch (state) {
    case TargetState::kPending: return "pending";
    case TargetState::kRunning: return "running";
    case TargetState::kDone: return "done";
    case TargetState::kFailed: return "failed";
  }
  return "?";
}

RefillManager::RefillManager(ManagerOptions options, StatsProbe probe, EventSink events, FenceProbe fence)
    : options_(std::move(options)), probe_(std::move(probe)), events_(std::move(events)), fence_(std::move(fence)) {}

RefillManager::~RefillManager() { Stop(); }

void RefillManager::Start() {
  std::lock_guard lock(mu_);
  if (!options_.enabled || detector_.joinable()) return;
  stopping_ = false;
  detector_ = std::thread([this] { DetectLoop(); });
  worker_ = std::thread([this] { WorkLoop(); });
}

void RefillManager::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [key, t] : targets_) t.cancel->store(true);
  }
  cv_.notify_all();
  if (detector_.joinable()) detector_.join();
  if (worker_.joinable()) worker_.join();
}

void RefillManager::SetOnMarksChanged(std::function<void()> callback) {
  std::lock_guard lock(mu_);
  on_marks_changed_ = std::move(callback);
}

void RefillManager::SetLeading(bool leading) {
  {
    std::lock_guard lock(mu_);
    if (leading == leading_) return;
    leading_ = leading;
    if (!leading) {
      // A follower neither probes nor copies; the next leader starts from its own observations.
      for (auto& [key, t] : targets_) t.cancel->store(true);
      targets_.clear();
      seen_.clear();
    }
  }
  cv_.notify_all();
  NotifyMarks();
}

std::optional<RefillJob> RefillManager::BuildJob(const PoolPair& pair, const std::string& role,
                                                  const std::string& member) {
  const bool primary = role == kPrimary;
  const std::vector<MemberSpec>& own = primary ? pair.primary : pair.backup;
  const std::vector<MemberSpec>& other = primary ? pair.backup : pair.primary;
  RefillJob job;
  job.pool = pair.pool;
  job.role = role;
  bool found = false;
  for (const MemberSpec& m : own) {
    job.ring.push_back(m.name);  // down members stay on the ring, as in the sidecar
    if (m.name == member) {
      if (m.state != MemberState::kUp) return std::nullopt;
      job.target = {m.name, m.address};
      found = true;
    }
  }
  if (!found) return std::nullopt;
  for (const MemberSpec& m : other) {
    job.peer_ring.push_back(m.name);
    if (m.state == MemberState::kUp) job.peers.push_back({m.name, m.address});
  }
  if (job.peers.empty()) return std::nullopt;
  return job;
}

void RefillManager::NoteRingChanges(const std::vector<PoolPair>& pools) {
  struct Gain {
    PoolPair pair;
    std::string role;
    std::vector<std::string> old_ring;
    MemberSpec member;
    std::optional<uint64_t> fence;
  };
  std::vector<Gain> gains;
  {
    std::lock_guard lock(mu_);
    const bool act = leading_ && options_.enabled && options_.handover;
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> rings;
    for (const PoolPair& pair : pools) {
      for (std::string_view role : {kPrimary, kBackup}) {
        const auto& own = role == kPrimary ? pair.primary : pair.backup;
        std::vector<std::string> names;
        for (const MemberSpec& m : own) names.push_back(m.name);
        auto key = std::make_pair(pair.pool, std::string(role));
        auto last = rings_.find(key);
        if (act && last != rings_.end() && !last->second.empty() && last->second != names &&
            !pair.primary.empty() && !pair.backup.empty()) {
          // Ketama: a member that joins takes keys only for itself; one that leaves gives its keys to the others.
          const auto& before = last->second;
          bool removed = std::any_of(before.begin(), before.end(), [&](const std::string& n) {
            return std::find(names.begin(), names.end(), n) == names.end();
          });
          for (const MemberSpec& m : own) {
            bool joined = std::find(before.begin(), before.end(), m.name) == before.end();
            if (m.state == MemberState::kUp && (joined || removed)) {
              gains.push_back({pair, std::string(role), before, m, std::nullopt});
            }
          }
        }
        rings[key] = std::move(names);
      }
    }
    rings_ = std::move(rings);
  }
  if (gains.empty()) return;
  // Fences before the push: a write the new ring sends to a member gets a CAS above its fence.
  auto timeout = std::min<std::chrono::milliseconds>(options_.probe_timeout, std::chrono::milliseconds(500));
  for (Gain& g : gains) {
    auto fence = fence_(g.member.address, timeout);
    if (fence.ok()) {
      g.fence = fence.value();
    } else {
      MEMHA_LOG(kWarn, "refill", "no fence on " << g.member.name << " (its copies from before the ring change stay "
                                                << "unchecked): " << fence.status().message());
    }
  }
  std::lock_guard lock(mu_);
  if (!leading_) return;
  for (Gain& g : gains) {
    auto job = BuildJob(g.pair, g.role, g.member.name);
    if (!job) continue;
    Key key{g.pair.pool, g.role, g.member.name};
    auto it = targets_.find(key);
    bool active = it != targets_.end() &&
                  (it->second.state == TargetState::kPending || it->second.state == TargetState::kRunning);
    // A full refill in progress (the member came back empty) covers every key: it starts over on the new ring.
    if (active && !it->second.job.handover()) continue;
    // An unfinished handover: the keys it had not checked yet moved since its own old ring.
    job->old_ring = active ? it->second.job.old_ring : g.old_ring;
    job->fenced = g.fence.has_value();
    job->fence = g.fence.value_or(0);
    if (it != targets_.end()) it->second.cancel->store(true);
    Target t;
    t.job = std::move(*job);
    t.service = g.role == kPrimary ? g.pair.pool : g.pair.backup_service;
    t.reason = "ring change";
    t.next_try = SteadyClock::now() + options_.handover_delay;
    t.generation = next_generation_++;
    MEMHA_LOG(kInfo, "refill", "handover after a ring change fence=" << (t.job.fenced ? std::to_string(t.job.fence) : "none")
                                                                    << " " << t.job.Describe());
    targets_[key] = std::move(t);
    ++handovers_;
  }
}

void RefillManager::UpdatePools(std::vector<PoolPair> pools) {
  NoteRingChanges(pools);
  bool marks_changed = false;
  {
    std::lock_guard lock(mu_);
    pools_ = std::move(pools);
    for (auto it = targets_.begin(); it != targets_.end();) {
      const auto& [pool, role, member] = it->first;
      Target& t = it->second;
      std::optional<RefillJob> job;
      for (const PoolPair& pair : pools_) {
        if (pair.pool == pool) job = BuildJob(pair, role, member);
      }
      if (!job) {
        bool active = t.state == TargetState::kPending || t.state == TargetState::kRunning;
        bool pool_gone = std::none_of(pools_.begin(), pools_.end(), [&](const PoolPair& p) { return p.pool == pool; });
        bool member_gone = std::none_of(pools_.begin(), pools_.end(), [&](const PoolPair& p) {
          const auto& own = role == kPrimary ? p.primary : p.backup;
          return p.pool == pool &&
                 std::any_of(own.begin(), own.end(), [&](const MemberSpec& m) { return m.name == member; });
        });
        if (active) {
          MEMHA_LOG(kInfo, "refill", "abandoned: the member is not up or no peer is " << t.job.Describe());
          t.cancel->store(true);
          marks_changed = true;
        }
        // A finished one is kept for the status (and the sidecars' "done") while its member is in its pool.
        it = active || pool_gone || member_gone ? targets_.erase(it) : std::next(it);
        continue;
      }
      const bool active = t.state == TargetState::kPending || t.state == TargetState::kRunning;
      if (!active && job->target.address != t.job.target.address) {
        // A finished (or failed) refill of the member's previous pod: its "done" must not mark the new, empty
        // pod (detection finds the new address and refills it).
        it = targets_.erase(it);
        marks_changed = true;
        continue;
      }
      if (t.job.handover() && job->target.address == t.job.target.address) {
        // Still a handover (a new address is a new, empty pod: then the whole share is copied).
        job->old_ring = t.job.old_ring;
        job->fenced = t.job.fenced;
        job->fence = t.job.fence;
      }
      if (*job != t.job && (t.state == TargetState::kPending || t.state == TargetState::kRunning)) {
        // The ring, the target's address or its peers changed: what was copied so far may belong elsewhere now;
        // start over with the new topology.
        MEMHA_LOG(kInfo, "refill", "topology changed: starting over " << job->Describe() << " (was "
                                                                        << t.job.Describe() << ")");
        t.cancel->store(true);
        t.cancel = std::make_shared<std::atomic<bool>>(false);
        t.job = std::move(*job);
        t.cursor = RefillCursor();
        t.state = TargetState::kPending;
        t.attempts = 0;
        t.next_try = SteadyClock::now();
        t.generation = next_generation_++;
      }
      ++it;
    }
  }
  cv_.notify_all();
  if (marks_changed) NotifyMarks();
}

void RefillManager::DetectOnce() {
  std::vector<PoolPair> pools;
  {
    std::lock_guard lock(mu_);
    if (!leading_ || !options_.enabled) return;
    pools = pools_;
  }
  std::map<std::string, std::optional<MemberStats>> probed;  // by address: a member of several pairs once
  auto stats_of = [&](const MemberSpec& m) -> std::optional<MemberStats> {
    auto it = probed.find(m.address);
    if (it != probed.end()) return it->second;
    std::optional<MemberStats> s;
    if (m.state == MemberState::kUp) {
      auto r = probe_(m.address, options_.probe_timeout);
      if (r.ok()) s = r.value();
    }
    probed.emplace(m.address, s);
    return s;
  };
  struct Found {
    Key key;
    std::string service;
    std::string reason;
    PoolPair pair;
  };
  std::vector<Found> found;
  std::map<Key, Seen> seen_now;
  for (const PoolPair& pair : pools) {
    if (pair.backup.empty() || pair.primary.empty()) continue;
    for (std::string_view role : {kPrimary, kBackup}) {
      const auto& own = role == kPrimary ? pair.primary : pair.backup;
      const auto& other = role == kPrimary ? pair.backup : pair.primary;
      uint64_t other_items = 0;
      for (const MemberSpec& m : other) {
        if (auto s = stats_of(m)) other_items += s->curr_items;
      }
      const uint64_t expected_share = other_items / own.size();
      for (const MemberSpec& m : own) {
        auto s = stats_of(m);
        if (!s) continue;
        Key key{pair.pool, std::string(role), m.name};
        seen_now[key] = Seen{m.address, s->uptime};
        std::string reason;
        std::lock_guard lock(mu_);
        auto before = seen_.find(key);
        if (before == seen_.end()) {
          if (s->curr_items * 10 < expected_share) reason = "empty";
        } else if (before->second.address != m.address) {
          reason = "new address";
        } else if (s->uptime < before->second.uptime) {
          reason = "restarted";
        }
        if (!reason.empty() && other_items > 0) {
          found.push_back({key, role == kPrimary ? pair.pool : pair.backup_service, reason, pair});
        }
      }
    }
  }
  bool marks_changed = false;
  {
    std::lock_guard lock(mu_);
    if (!leading_) return;
    // A member that did not answer this time keeps what was seen of it (it may be restarting: its uptime will
    // show it); one that left the pools is forgotten (seen again = first sight).
    for (auto& [key, seen] : seen_now) seen_[key] = std::move(seen);
    for (auto it = seen_.begin(); it != seen_.end();) {
      const auto& [pool, role, member] = it->first;
      bool present = std::any_of(pools.begin(), pools.end(), [&](const PoolPair& p) {
        const auto& own = role == kPrimary ? p.primary : p.backup;
        return p.pool == pool &&
               std::any_of(own.begin(), own.end(), [&](const MemberSpec& m) { return m.name == member; });
      });
      it = present ? std::next(it) : seen_.erase(it);
    }
    for (Found& f : found) {
      auto job = BuildJob(f.pair, std::get<1>(f.key), std::get<2>(f.key));
      if (!job) continue;
      auto it = targets_.find(f.key);
      if (it != targets_.end() && f.reason == "empty" &&
          (it->second.state == TargetState::kPending || it->second.state == TargetState::kRunning)) {
        continue;  // already on it
      }
      if (it != targets_.end()) it->second.cancel->store(true);  // came back again: what was copied is gone
      Target t;
      t.job = std::move(*job);
      t.service = f.service;
      t.reason = f.reason;
      t.next_try = SteadyClock::now();
      t.generation = next_generation_++;
      MEMHA_LOG(kInfo, "refill", "member needs a refill (" << f.reason << ") " << t.job.Describe());
      targets_[f.key] = std::move(t);
      marks_changed = true;
    }
  }
  cv_.notify_all();
  if (marks_changed) NotifyMarks();
}

void RefillManager::DetectLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    DetectOnce();
    lock.lock();
    cv_.wait_for(lock, options_.probe_interval, [this] { return stopping_; });
  }
}

void RefillManager::WorkLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // The pending target that is due first.
    auto now = SteadyClock::now();
    auto next = targets_.end();
    for (auto it = targets_.begin(); it != targets_.end(); ++it) {
      if (it->second.state != TargetState::kPending) continue;
      if (next == targets_.end() || it->second.next_try < next->second.next_try) next = it;
    }
    if (next == targets_.end() || !leading_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    if (next->second.next_try > now) {
      cv_.wait_until(lock, next->second.next_try);
      continue;
    }
    Key key = next->first;
    Target& t = next->second;
    t.state = TargetState::kRunning;
    ++t.attempts;
    RefillJob job = t.job;
    RefillCursor cursor = t.cursor;
    auto cancel = t.cancel;
    uint64_t generation = t.generation;
    std::string service = t.service;
    std::string reason = t.reason;
    int attempt = t.attempts;
    lock.unlock();

    if (attempt == 1 && cursor.processed == 0) {
      Event(job.pool, false, "RefillStarted",
            job.role + " " + job.target.name + " (" + reason + "): " +
                (job.handover() ? "checking and copying the keys that moved onto it from "
                                : "copying its keys from ") +
                std::to_string(job.peers.size()) + " member(s) of the other pool");
    }
    MEMHA_LOG(kInfo, "refill", "started attempt=" << attempt << " " << job.Describe());
    auto start = SteadyClock::now();
    RefillLimits limits = options_.limits;
    limits.on_progress = [this](uint64_t owned, uint64_t processed) {
      running_owned_ = owned;
      running_processed_ = processed;
    };
    limits.on_progress(cursor.owned, cursor.processed);
    running_ = true;
    RefillResult result = RunRefill(job, limits, &cursor, &counters_, cancel.get());
    running_ = false;
    double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    ++runs_[static_cast<size_t>(result.outcome)];

    lock.lock();
    auto it = targets_.find(key);
    bool current = it != targets_.end() && it->second.generation == generation;
    std::ostringstream line;
    line << ToString(result.outcome) << " " << job.Describe() << " " << Progress(cursor) << " seconds=" << seconds
         << (result.error.ok() ? "" : " error=" + result.error.message());
    if (result.outcome == RefillOutcome::kFailed) {
      MEMHA_LOG(kWarn, "refill", line.str());
    } else {
      MEMHA_LOG(kInfo, "refill", line.str());
    }
    if (!current) continue;  // abandoned for a newer job (its own state was set by whoever replaced it)
    Target& done = it->second;
    done.cursor = cursor;
    if (result.outcome == RefillOutcome::kDone) {
      done.state = TargetState::kDone;
      done.error.clear();
      lock.unlock();
      Event(job.pool, false, "RefillCompleted",
            job.role + " " + job.target.name + ": " + Progress(cursor) + " handled in " +
                std::to_string(static_cast<int>(seconds)) + " s");
      NotifyMarks();
      lock.lock();
    } else if (result.outcome == RefillOutcome::kFailed) {
      done.error = result.error.message();
      if (done.attempts >= options_.max_attempts) {
        done.state = TargetState::kFailed;
        lock.unlock();
        Event(job.pool, true, "RefillFailed",
              job.role + " " + job.target.name + ": gave up after " + std::to_string(attempt) +
                  " attempts at " + Progress(cursor) + ": " + result.error.message());
        NotifyMarks();
        lock.lock();
      } else {
        done.state = TargetState::kPending;
        auto wait = options_.retry_base * (1 << std::min(done.attempts - 1, 16));
        done.next_try = SteadyClock::now() + std::min<std::chrono::milliseconds>(wait, options_.retry_max);
      }
    } else {
      done.state = TargetState::kPending;  // cancelled without a replacement (Stop): resumed if ever run again
    }
  }
}

std::vector<TargetStatus> RefillManager::Status() const {
  std::lock_guard lock(mu_);
  std::vector<TargetStatus> out;
  for (const auto& [key, t] : targets_) {
    TargetStatus s;
    s.pool = std::get<0>(key);
    s.role = std::get<1>(key);
    s.member = std::get<2>(key);
    s.service = t.service;
    s.state = t.state;
    s.reason = t.reason;
    s.owned = t.cursor.owned;
    s.processed = t.cursor.processed;
    s.attempts = t.attempts;
    s.error = t.error;
    out.push_back(std::move(s));
  }
  return out;
}

RefillMarks RefillManager::Marks() const {
  std::lock_guard lock(mu_);
  RefillMarks marks;
  for (const auto& [key, t] : targets_) {
    MemberRefill& mark = marks[t.service][std::get<2>(key)];
    if (t.state == TargetState::kPending || t.state == TargetState::kRunning) {
      mark = MemberRefill::kRunning;  // running wins over done (a member in two pairs)
    } else if (t.state == TargetState::kDone && mark == MemberRefill::kNone) {
      mark = MemberRefill::kDone;
    }
  }
  return marks;
}

std::pair<uint64_t, uint64_t> RefillManager::RunningProgress() const {
  if (!running_) return {0, 0};
  return {running_owned_.load(), running_processed_.load()};
}

size_t RefillManager::Targets(TargetState state) const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(targets_.begin(), targets_.end(), [&](const auto& kv) { return kv.second.state == state; }));
}

void RefillManager::NotifyMarks() {
  std::function<void()> callback;
  {
    std::lock_guard lock(mu_);
    callback = on_marks_changed_;
  }
  if (callback) callback();
}

void RefillManager::Event(const std::string& service, bool warning, const std::string& reason,
                          const std::string& message) {
  if (events_) events_(service, warning, reason, message);
}

}  // namespace memha::refill
