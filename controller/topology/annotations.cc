#include "controller/topology/annotations.h"

#include <charconv>
#include <set>

namespace memha::topology {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// RFC 1123 label, as Kubernetes requires for namespace and Service names.
bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

}  // namespace

Result<std::string> ParseServiceRef(std::string_view text, std::string_view default_namespace) {
  text = Trim(text);
  std::string_view ns = default_namespace;
  std::string_view name = text;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    ns = text.substr(0, slash);
    name = text.substr(slash + 1);
    if (!IsDnsLabel(ns)) return Status::InvalidArgument("\"" + std::string(text) + "\": bad namespace");
  }
  if (!IsDnsLabel(name)) {
    return Status::InvalidArgument("\"" + std::string(text) + "\": not a Service name (lower-case DNS label)");
  }
  return std::string(ns) + "/" + std::string(name);
}

Result<std::vector<PoolRef>> ParsePoolsAnnotation(std::string_view text, std::string_view pod_namespace,
                                                  uint16_t default_port) {
  std::vector<PoolRef> refs;
  std::set<std::string> services;
  std::set<uint16_t> ports;
  bool defaulted = false;
  if (Trim(text).empty()) return Status::InvalidArgument("empty: name at least one pool");
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view entry = Trim(text.substr(start, comma - start));
    start = comma + 1;
    if (entry.empty()) return Status::InvalidArgument("empty entry in \"" + std::string(text) + "\"");
    PoolRef ref;
    std::string_view pool = entry;
    if (size_t colon = entry.find(':'); colon != std::string_view::npos) {
      pool = entry.substr(0, colon);
      std::string_view port_text = entry.substr(colon + 1);
      unsigned port = 0;
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
        return Status::InvalidArgument("\"" + std::string(entry) + "\": local port must be 1-65535");
      }
      ref.local_port = static_cast<uint16_t>(port);
    } else {
      if (defaulted) {
        return Status::Conflict("\"" + std::string(entry) +
                                "\": only one pool may omit its local port (the others need pool:port)");
      }
      defaulted = true;
      ref.local_port = default_port;
    }
    auto service = ParseServiceRef(pool, pod_namespace);
    if (!service.ok()) return service.status();
    ref.service = std::move(service).value();
    if (!services.insert(ref.service).second) {
      return Status::Conflict("\"" + std::string(entry) + "\": pool " + ref.service + " listed twice");
    }
    if (!ports.insert(ref.local_port).second) {
      return Status::Conflict("\"" + std::string(entry) + "\": local port " + std::to_string(ref.local_port) +
                              " used by two pools");
    }
    refs.push_back(std::move(ref));
  }
  return refs;
}

Result<WritePolicy> ParseWritePolicyAnnotation(std::string_view text) {
  WritePolicy p;
  if (!ParseWritePolicy(Trim(text), &p)) {
    return Status::InvalidArgument("\"" + std::string(text) + "\": must be async, sync or primary-only");
  }
  return p;
}

Result<bool> ParseWarmupAnnotation(std::string_view text) {
  text = Trim(text);
  if (text == "on" || text == "true") return true;
  if (text == "off" || text == "false") return false;
  return Status::InvalidArgument("\"" + std::string(text) + "\": must be on or off");
}

}  // namespace memha::topology
