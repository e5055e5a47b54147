#include "controller/status/pool_status.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace memha::status {
namespace {

std::string MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kUp: return "up";
    case MemberState::kDown: return "down";
    case MemberState::kTerminating: return "terminating";
  }
  return "down";
}

void AddReason(PoolStatus* p, const std::string& reason) {
  p->message += (p->message.empty() ? "" : "; ") + reason;
}

}  // namespace

std::vector<PoolStatus> ComputePoolStatus(const topology::State& state,
                                          const std::vector<refill::TargetStatus>& refills, const InSync& in_sync) {
  std::map<std::string, PoolStatus> pools;
  // Backups first: a pool named only as another's backup has its own PoolBase only when a pod uses it directly.
  std::map<std::string, const std::vector<MemberSpec>*> members;
  for (const auto& [service, base] : state.pools) {
    members[service] = &base->primary;
    PoolStatus& p = pools[service];
    p.service = service;
    auto settings = state.settings.find(service);
    if (settings != state.settings.end() && !settings->second.backup.empty()) {
      p.backup = settings->second.backup;
      PoolStatus& b = pools[p.backup];
      b.service = p.backup;
      b.backup_of.push_back(service);
      if (members.count(p.backup) == 0) members[p.backup] = &base->backup;
    }
  }
  // Refill targets by (Service, member): the Service of the member's own pool.
  std::map<std::pair<std::string, std::string>, const refill::TargetStatus*> targets;
  for (const refill::TargetStatus& t : refills) targets[{t.service, t.member}] = &t;

  for (auto& [service, p] : pools) {
    auto m = members.find(service);
    if (m != members.end()) {
      for (const MemberSpec& spec : *m->second) {
        MemberStatus s{spec.name, spec.address, MemberStateName(spec.state)};
        if (auto t = targets.find({service, spec.name}); t != targets.end()) {
          const refill::TargetStatus& target = *t->second;
          if (target.state == refill::TargetState::kPending || target.state == refill::TargetState::kRunning) {
            s.refill = "running";
            if (spec.state == MemberState::kUp) s.state = "refilling";
            s.refill_owned = target.owned;
            s.refill_processed = target.processed;
          } else {
            s.refill = std::string(refill::ToString(target.state));
          }
        }
        p.members.push_back(std::move(s));
      }
    }
    std::sort(p.backup_of.begin(), p.backup_of.end());
  }

  // Sidecars per primary pool, from their topologies' bases.
  std::map<std::string, std::set<std::string>> users;
  for (const auto& [pod, s] : state.sidecars) {
    if (!s.has_sidecar) continue;
    for (const auto& [service, base] : state.pools) {
      if (std::find(s.bases.begin(), s.bases.end(), base) != s.bases.end()) users[service].insert(pod);
    }
  }
  for (auto& [service, pods] : users) {
    PoolStatus& p = pools[service];
    for (const std::string& pod : pods) {
      std::optional<bool> synced = in_sync ? in_sync(pod) : std::nullopt;
      if (!synced.has_value()) continue;  // unknown to the pusher: not counted either way
      ++p.sidecars;
      if (*synced) {
        ++p.sidecars_in_sync;
      } else if (p.behind.size() < kBehindListed) {
        p.behind.push_back(pod);
      }
    }
  }

  for (auto& [service, p] : pools) {
    size_t up = 0, refilling = 0, out = 0, failed = 0;
    for (const MemberStatus& m : p.members) {
      up += m.state == "up";
      refilling += m.state == "refilling";
      out += m.state == "down" || m.state == "terminating";
      failed += m.refill == "failed";
    }
    p.phase = "Healthy";
    if (p.members.empty() || up + refilling == 0) {
      p.phase = "Unavailable";
      AddReason(&p, p.members.empty() ? "no members" : "no member up");
    } else {
      if (out > 0) AddReason(&p, std::to_string(out) + " of " + std::to_string(p.members.size()) + " members down");
      if (failed > 0) AddReason(&p, std::to_string(failed) + " refill(s) failed");
      if (p.sidecars_in_sync < p.sidecars) {
        AddReason(&p, std::to_string(p.sidecars - p.sidecars_in_sync) + " sidecar(s) behind");
      }
      if (!p.backup.empty()) {
        auto b = pools.find(p.backup);
        bool backup_up = b != pools.end() && std::any_of(b->second.members.begin(), b->second.members.end(),
                                                         [](const MemberStatus& m) { return m.state == "up"; });
        if (!backup_up) AddReason(&p, "backup " + p.backup + " has no member up");
      }
      if (!p.message.empty()) {
        p.phase = "Degraded";
      } else if (refilling > 0) {
        p.phase = "Refilling";
        AddReason(&p, std::to_string(refilling) + " member(s) being refilled");
      }
    }
  }
  std::vector<PoolStatus> out;
  for (auto& [service, p] : pools) out.push_back(std::move(p));
  return out;
}

std::string ToJson(const PoolStatus& p, const std::string& last_change) {
  nlohmann::ordered_json j;
  j["phase"] = p.phase;
  if (!p.message.empty()) j["message"] = p.message;
  if (!p.backup.empty()) j["backup"] = p.backup;
  if (!p.backup_of.empty()) j["backupOf"] = p.backup_of;
  nlohmann::ordered_json members = nlohmann::ordered_json::array();
  for (const MemberStatus& m : p.members) {
    nlohmann::ordered_json member;
    member["name"] = m.name;
    member["address"] = m.address;
    member["state"] = m.state;
    if (!m.refill.empty()) member["refill"] = m.refill;
    if (m.refill == "running") {
      member["refillKeys"] = m.refill_owned;
      member["refillProcessed"] = m.refill_processed;
    }
    members.push_back(std::move(member));
  }
  j["members"] = std::move(members);
  j["sidecars"] = {{"total", p.sidecars}, {"inSync", p.sidecars_in_sync}};
  if (!p.behind.empty()) j["sidecars"]["behind"] = p.behind;
  j["lastChange"] = last_change;
  return j.dump();
}

PoolStatus WithoutProgress(PoolStatus status) {
  for (MemberStatus& m : status.members) {
    m.refill_owned = 0;
    m.refill_processed = 0;
  }
  return status;
}

}  // namespace memha::status
