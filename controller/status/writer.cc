#include "controller/status/writer.h"

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "controller/kube/events.h"

namespace memha::status {

std::string StatusKey(const std::string& service) {
  std::string key = service;
  if (size_t slash = key.find('/'); slash != std::string::npos) key[slash] = '.';
  return key;
}

StatusWriter::StatusWriter(kube::KubeApi& api, WriterOptions options, EventSink events, RefillSource refills,
                           InSync in_sync)
    : api_(api), options_(std::move(options)), events_(std::move(events)), refills_(std::move(refills)),
      in_sync_(std::move(in_sync)) {}

StatusWriter::~StatusWriter() { Stop(); }

void StatusWriter::Update(std::shared_ptr<const topology::State> state, bool leading) {
  {
    std::lock_guard lock(mu_);
    state_ = std::move(state);
    leading_ = leading;
    poked_ = true;
  }
  cv_.notify_all();
}

void StatusWriter::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void StatusWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatusWriter::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    RunOnce();
    lock.lock();
    cv_.wait_for(lock, options_.interval, [this] { return stopping_ || poked_; });
    poked_ = false;
  }
}

size_t StatusWriter::Pools(const std::string& phase) const {
  std::lock_guard lock(mu_);
  auto it = phases_.find(phase);
  return it == phases_.end() ? 0 : it->second;
}

void StatusWriter::RunOnce(std::chrono::system_clock::time_point now) {
  std::shared_ptr<const topology::State> state;
  bool leading = false;
  {
    std::lock_guard lock(mu_);
    state = state_;
    leading = leading_;
    if (!leading) phases_.clear();
  }
  if (!leading || state == nullptr) {
    // A follower writes nothing; the next term starts from a new baseline (what it last saw may be stale).
    baseline_ = false;
    written_.clear();
    return;
  }
  std::vector<PoolStatus> pools = ComputePoolStatus(*state, refills_ ? refills_() : std::vector<refill::TargetStatus>{},
                                                    in_sync_);
  const auto steady = std::chrono::steady_clock::now();
  const std::string stamp = kube::FormatTime(now);
  std::map<std::string, std::optional<std::string>> changes;  // key -> JSON, or nullopt: remove
  std::map<std::string, size_t> phases;
  std::map<std::string, bool> present;
  for (PoolStatus& p : pools) {
    ++phases[p.phase];
    present[p.service] = true;
    auto it = written_.find(p.service);
    if (it == written_.end()) {
      Written w;
      w.status = p;
      w.last_change = stamp;
      w.dirty = true;
      it = written_.emplace(p.service, std::move(w)).first;
    } else {
      Written& w = it->second;
      if (baseline_) Events(w.status, p);
      bool significant = !(WithoutProgress(w.status) == WithoutProgress(p));
      bool progress = !(w.status == p);
      if (significant) w.last_change = stamp;
      if (significant || (progress && steady - w.written_at >= options_.progress_interval)) w.dirty = true;
      if (significant || w.dirty) w.status = p;
    }
    Written& w = it->second;
    // Sidecars behind: one Warning per episode, once it lasted `behind_warning`.
    if (p.behind.empty()) {
      w.behind_since = {};
      w.behind_warned = false;
    } else {
      if (w.behind_since == std::chrono::steady_clock::time_point{}) w.behind_since = steady;
      if (!w.behind_warned && steady - w.behind_since >= options_.behind_warning && baseline_) {
        w.behind_warned = true;
        std::string pods;
        for (const std::string& pod : p.behind) pods += (pods.empty() ? "" : ", ") + pod;
        if (events_) {
          events_(p.service, true, "SidecarsBehind",
                  std::to_string(p.sidecars - p.sidecars_in_sync) + " sidecar(s) have not taken the current "
                  "topology for " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                        steady - w.behind_since).count()) +
                      " s: " + pods);
        }
      }
    }
    if (w.dirty) changes[StatusKey(p.service)] = ToJson(w.status, w.last_change);
  }
  for (auto it = written_.begin(); it != written_.end();) {
    if (present.count(it->first) > 0) {
      ++it;
      continue;
    }
    changes[StatusKey(it->first)] = std::nullopt;  // the pool is no longer used: its key goes
    it = written_.erase(it);
  }
  baseline_ = true;
  {
    std::lock_guard lock(mu_);
    phases_ = std::move(phases);
  }
  if (changes.empty() || options_.config_map.empty()) {
    for (auto& [service, w] : written_) w.dirty = false;
    return;
  }
  Status s = Store(changes);
  if (!s.ok()) {
    ++failures_;
    MEMHA_LOG(kWarn, "status", "cannot write ConfigMap " << options_.ns << "/" << options_.config_map << ": "
                                                         << s.message());
    return;  // still dirty: retried next round
  }
  ++writes_;
  for (auto& [service, w] : written_) {
    if (w.dirty) w.written_at = steady;
    w.dirty = false;
  }
}

Status StatusWriter::Store(const std::map<std::string, std::optional<std::string>>& changes) {
  const std::string path = "/api/v1/namespaces/" + options_.ns + "/configmaps/" + options_.config_map;
  nlohmann::json data = nlohmann::json::object();
  for (const auto& [key, value] : changes) data[key] = value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  nlohmann::json patch = {{"data", data}};
  auto r = api_.Request("PATCH", path, patch.dump(), "application/merge-patch+json");
  if (!r.ok()) return r.status();
  if (r.value().status == 404) {
    return Status::NotFound("ConfigMap " + options_.ns + "/" + options_.config_map +
                            " does not exist: the chart (or manifests/memha.yaml) creates it");
  }
  if (r.value().status / 100 != 2) {
    return Status::Unavailable("HTTP " + std::to_string(r.value().status) + ": " + r.value().body.substr(0, 200));
  }
  return Status::Ok();
}

void StatusWriter::Events(const PoolStatus& before, const PoolStatus& now) {
  if (!events_) return;
  std::map<std::string, const MemberStatus*> previous;
  for (const MemberStatus& m : before.members) previous[m.name] = &m;
  auto out = [](const std::string& state) { return state == "down" || state == "terminating"; };
  for (const MemberStatus& m : now.members) {
    auto it = previous.find(m.name);
    if (it == previous.end()) continue;
    const std::string& was = it->second->state;
    if (!out(was) && out(m.state)) {
      events_(now.service, false, "MemberDown", m.name + " (" + m.address + ") is " + m.state);
    } else if (out(was) && !out(m.state)) {
      events_(now.service, false, "MemberUp", m.name + " (" + m.address + ") is back: " + m.state);
    }
  }
  if (before.phase != "Unavailable" && now.phase == "Unavailable") {
    events_(now.service, true, "PoolUnavailable", now.message);
  } else if (before.phase == "Unavailable" && now.phase != "Unavailable") {
    events_(now.service, false, "PoolAvailable", now.phase);
  }
}

}  // namespace memha::status
