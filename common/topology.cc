#include "common/topology.h"

#include <nlohmann/json.hpp>
#include <set>

namespace memha {
namespace {

using nlohmann::json;

Status Err(const std::string& where, const std::string& what) {
  return Status::InvalidArgument(where + ": " + what);
}

Status ParseMembers(const json& pool, const char* field, const std::string& where, std::vector<MemberSpec>* out) {
  if (!pool.contains(field)) return Status::Ok();
  const json& arr = pool.at(field);
  if (!arr.is_array()) return Err(where + "." + field, "must be an array");
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& m = arr[i];
    std::string at = where + "." + field + "[" + std::to_string(i) + "]";
    if (!m.is_object()) return Err(at, "must be an object");
    MemberSpec spec;
    if (!m.contains("name") || !m["name"].is_string()) return Err(at + ".name", "required string");
    if (!m.contains("address") || !m["address"].is_string()) return Err(at + ".address", "required string");
    spec.name = m["name"].get<std::string>();
    spec.address = m["address"].get<std::string>();
    if (m.contains("state")) {
      if (!m["state"].is_string() || !ParseMemberState(m["state"].get<std::string>(), &spec.state)) {
        return Err(at + ".state", "must be one of up, down, terminating");
      }
    }
    if (m.contains("refill") && m["refill"].is_string()) {
      const std::string& refill = m["refill"].get_ref<const std::string&>();
      if (refill == "running") spec.refill = MemberRefill::kRunning;
      if (refill == "done") spec.refill = MemberRefill::kDone;
    }
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

}  // namespace

std::string_view ToString(WritePolicy p) {
  switch (p) {
    case WritePolicy::kAsync: return "async";
    case WritePolicy::kSync: return "sync";
    case WritePolicy::kPrimaryOnly: return "primary-only";
  }
  return "?";
}

std::string_view ToString(MemberRefill r) {
  switch (r) {
    case MemberRefill::kNone: return "none";
    case MemberRefill::kRunning: return "running";
    case MemberRefill::kDone: return "done";
  }
  return "?";
}

std::string_view ToString(MemberState s) {
  switch (s) {
    case MemberState::kUp: return "up";
    case MemberState::kDown: return "down";
    case MemberState::kTerminating: return "terminating";
  }
  return "?";
}

bool ParseWritePolicy(std::string_view text, WritePolicy* out) {
  for (WritePolicy p : {WritePolicy::kAsync, WritePolicy::kSync, WritePolicy::kPrimaryOnly}) {
    if (text == ToString(p)) { *out = p; return true; }
  }
  return false;
}

bool ParseMemberState(std::string_view text, MemberState* out) {
  for (MemberState s : {MemberState::kUp, MemberState::kDown, MemberState::kTerminating}) {
    if (text == ToString(s)) { *out = s; return true; }
  }
  return false;
}

Result<Topology> ParseTopology(std::string_view json_text) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::InvalidArgument("invalid JSON");
  try {
    if (!doc.is_object()) return Err("topology", "must be a JSON object");
    Topology topo;
    for (const char* field : {"epoch", "version"}) {
      if (!doc.contains(field) || !doc[field].is_number_unsigned()) {
        return Err(field, "required non-negative integer");
      }
    }
    topo.epoch = doc["epoch"].get<uint64_t>();
    topo.version = doc["version"].get<uint64_t>();
    if (!doc.contains("pools") || !doc["pools"].is_array()) return Err("pools", "required array");
    const json& pools = doc["pools"];
    for (size_t i = 0; i < pools.size(); ++i) {
      const json& p = pools[i];
      std::string at = "pools[" + std::to_string(i) + "]";
      if (!p.is_object()) return Err(at, "must be an object");
      PoolSpec spec;
      if (!p.contains("name") || !p["name"].is_string()) return Err(at + ".name", "required string");
      if (!p.contains("listen") || !p["listen"].is_string()) return Err(at + ".listen", "required string");
      spec.name = p["name"].get<std::string>();
      spec.listen = p["listen"].get<std::string>();
      if (p.contains("listen_unix")) {
        if (!p["listen_unix"].is_string()) return Err(at + ".listen_unix", "must be a string");
        spec.listen_unix = p["listen_unix"].get<std::string>();
        if (spec.listen_unix.empty()) return Err(at + ".listen_unix", "must be an absolute path");  // or absent
      }
      if (p.contains("write_policy")) {
        if (!p["write_policy"].is_string() ||
            !ParseWritePolicy(p["write_policy"].get<std::string>(), &spec.write_policy)) {
          return Err(at + ".write_policy", "must be one of async, sync, primary-only");
        }
      }
      if (p.contains("warmup")) {
        if (!p["warmup"].is_boolean()) return Err(at + ".warmup", "must be true or false");
        spec.warmup = p["warmup"].get<bool>();
      }
      if (Status s = ParseMembers(p, "primary", at, &spec.primary); !s.ok()) return s;
      if (Status s = ParseMembers(p, "backup", at, &spec.backup); !s.ok()) return s;
      topo.pools.push_back(std::move(spec));
    }
    if (Status s = ValidateTopology(topo); !s.ok()) return s;
    // ValidateTopology checked the addresses; fill in the parsed forms.
    for (PoolSpec& pool : topo.pools) {
      pool.listen_endpoint = ParseHostPort(pool.listen).value();
      for (auto* list : {&pool.primary, &pool.backup}) {
        for (MemberSpec& m : *list) m.endpoint = ParseHostPort(m.address).value();
      }
    }
    return topo;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("invalid topology: ") + e.what());
  }
}

Status ValidateUnixSocketPath(const std::string& path) {
  if (path.empty() || path[0] != '/') return Status::InvalidArgument("must be an absolute path");
  if (path.size() > kMaxUnixSocketPath) {
    return Status::InvalidArgument("longer than " + std::to_string(kMaxUnixSocketPath) + " bytes (sun_path)");
  }
  if (path.find('\0') != std::string::npos) return Status::InvalidArgument("contains a NUL byte");
  if (path.back() == '/') return Status::InvalidArgument("names a directory");
  return Status::Ok();
}

Status ValidateTopology(const Topology& topo) {
  std::set<std::string> pool_names, listens;
  for (size_t i = 0; i < topo.pools.size(); ++i) {
    const PoolSpec& pool = topo.pools[i];
    std::string at = "pools[" + std::to_string(i) + "]";
    if (pool.name.empty()) return Err(at + ".name", "must not be empty");
    if (!pool_names.insert(pool.name).second) return Err(at + ".name", "duplicate pool \"" + pool.name + "\"");
    auto listen = ParseHostPort(pool.listen);
    if (!listen.ok()) return Err(at + ".listen", listen.status().message());
    if (!listens.insert(listen.value().ToString()).second) {
      return Err(at + ".listen", "duplicate listen address " + pool.listen);
    }
    if (!pool.listen_unix.empty()) {
      if (Status s = ValidateUnixSocketPath(pool.listen_unix); !s.ok()) return Err(at + ".listen_unix", s.message());
      if (!listens.insert("unix:" + pool.listen_unix).second) {
        return Err(at + ".listen_unix", "duplicate unix socket " + pool.listen_unix);
      }
    }
    if (pool.primary.empty()) return Err(at + ".primary", "must list at least one member");
    for (const auto& [field, list] : {std::pair{"primary", &pool.primary}, std::pair{"backup", &pool.backup}}) {
      std::set<std::string> names;
      for (size_t j = 0; j < list->size(); ++j) {
        const MemberSpec& m = (*list)[j];
        std::string mat = at + "." + field + "[" + std::to_string(j) + "]";
        if (m.name.empty()) return Err(mat + ".name", "must not be empty");
        if (m.name.size() > 200) return Err(mat + ".name", "longer than 200 bytes");
        if (!names.insert(m.name).second) return Err(mat + ".name", "duplicate member \"" + m.name + "\"");
        auto addr = ParseHostPort(m.address);
        if (!addr.ok()) return Err(mat + ".address", addr.status().message());
      }
    }
  }
  return Status::Ok();
}

std::string TopologyToJson(const Topology& topo, int indent) {
  json doc = {{"epoch", topo.epoch}, {"version", topo.version}, {"pools", json::array()}};
  for (const PoolSpec& pool : topo.pools) {
    json p = {{"name", pool.name},
              {"listen", pool.listen},
              {"write_policy", std::string(ToString(pool.write_policy))},
              {"warmup", pool.warmup},
              {"primary", json::array()},
              {"backup", json::array()}};
    if (!pool.listen_unix.empty()) p["listen_unix"] = pool.listen_unix;
    for (const auto& [field, list] : {std::pair{"primary", &pool.primary}, std::pair{"backup", &pool.backup}}) {
      for (const MemberSpec& m : *list) {
        json member = {{"name", m.name}, {"address", m.address}, {"state", std::string(ToString(m.state))}};
        if (m.refill != MemberRefill::kNone) member["refill"] = std::string(ToString(m.refill));
        p[field].push_back(std::move(member));
      }
    }
    doc["pools"].push_back(std::move(p));
  }
  return doc.dump(indent);
}

}  // namespace memha
