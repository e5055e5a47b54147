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
           std::vector<std::shared_ptr<Member>> backup_in)
    : spec(std::move(spec_in)), primary_ring(Names(spec.primary)), backup_ring(Names(spec.backup)),
      primary(std::move(primary_in)), backup(std::move(backup_in)) {
  needs_hash = primary.size() > 1 || backup.size() > 1;
  for (const auto* list : {&primary, &backup}) {
    for (const auto& m : *list) needs_hash = needs_hash || m->connection_count() > 1;
  }
}

}  // namespace memha
