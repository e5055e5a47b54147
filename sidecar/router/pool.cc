#include "sidecar/router/pool.h"

namespace memha {
namespace {
std::vector<std::string> Names(const std::vector<MemberSpec>& members) {
  std::vector<std::string> names;
  for (const MemberSpec& m : members) names.push_back(m.name);
  return names;
}
}  // namespace

Pool::Pool(PoolSpec spec_in, std::vector<std::shared_ptr<Member>> primary_in,
           std::vector<std::shared_ptr<Member>> backup_in, std::vector<RingChangePtr> changes,
           std::shared_ptr<PoolMetrics> metrics_in)
    : spec(std::move(spec_in)), primary_ring(Names(spec.primary)), backup_ring(Names(spec.backup)),
      primary(std::move(primary_in)), backup(std::move(backup_in)), metrics(std::move(metrics_in)),
      primary_changes(std::move(changes)),
      primary_names_(Names(spec.primary)) {
  needs_hash = primary.size() > 1 || backup.size() > 1 || !primary_changes.empty();
  for (const auto* list : {&primary, &backup}) {
    for (const auto& m : *list) needs_hash = needs_hash || m->connection_count() > 1;
  }
}

bool Pool::MovedTo(uint32_t hash, const std::string& owner, uint64_t cas) const {
  // Walk the changes newest first; `after` is the key's owner right after change i.
  std::string_view after = primary_names_[primary_ring.MemberForHash(hash)];
  for (const RingChangePtr& c : primary_changes) {
    if (after != owner) return false;  // before this change the key was elsewhere: older changes do not matter
    std::string_view before = c->before_names[c->before.MemberForHash(hash)];
    if (before != owner) {
      if (cas == 0) return true;
      auto f = c->fences->find(owner);
      return f == c->fences->end() || cas <= f->second;
    }
    after = before;
  }
  return false;
}

}  // namespace memha
