#include "sidecar/admin/topology_store.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace memha {

Status TopologyStore::Offer(const Topology& topology, const Apply& apply, bool force) {
  std::lock_guard<std::mutex> lock(mu_);
  if (current_ && !force && !topology.NewerThan(*current_)) {
    if (topology.SameGeneration(*current_) && topology.pools == current_->pools) return Status::Ok();
    return Status::Conflict("stale topology: have epoch=" + std::to_string(current_->epoch) + " version=" +
                            std::to_string(current_->version) + ", got epoch=" + std::to_string(topology.epoch) +
                            " version=" + std::to_string(topology.version));
  }
  if (Status s = apply(topology); !s.ok()) return s;
  current_ = topology;
  if (Status s = Persist(topology); !s.ok()) MEMHA_LOG(kWarn, "topology", s.message());
  return Status::Ok();
}

std::optional<Topology> TopologyStore::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

Status TopologyStore::Persist(const Topology& topology) const {
  if (state_file_.empty()) return Status::Ok();
  std::string tmp = state_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << TopologyToJson(topology, 2) << "\n";
    if (!out.flush()) return Status::Unavailable("cannot write state file " + tmp);
  }
  if (std::rename(tmp.c_str(), state_file_.c_str()) != 0) {
    return Status::Unavailable("cannot rename state file into " + state_file_);
  }
  return Status::Ok();
}

Result<Topology> TopologyStore::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto topo = ParseTopology(ss.str());
  if (!topo.ok()) return Status::InvalidArgument(path + ": " + topo.status().message());
  return topo;
}

}  // namespace memha
