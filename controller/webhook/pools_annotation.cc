#include "controller/webhook/pools_annotation.h"

#include <charconv>
#include <set>

namespace memha::webhook {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 1123 label (namespaces) / RFC 1035 label (Service names: must start with a letter).
bool IsDnsLabel(std::string_view s, bool must_start_with_letter) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  if (s.front() == '-' || s.back() == '-') return false;
  return !must_start_with_letter || (s.front() >= 'a' && s.front() <= 'z');
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

Result<std::vector<PoolRef>> ParsePoolsAnnotation(std::string_view text, int reserved_port) {
  std::vector<PoolRef> pools;
  std::set<int> ports;
  std::set<std::string> names;
  if (Trim(text).empty()) return Status::InvalidArgument("memha.io/pools is empty");
  while (true) {
    size_t comma = text.find(',');
    std::string_view entry = Trim(text.substr(0, comma));
    if (entry.empty()) return Status::InvalidArgument("memha.io/pools has an empty entry");
    PoolRef ref;
    std::string_view pool = entry;
    if (size_t colon = entry.find(':'); colon != std::string_view::npos) {
      pool = entry.substr(0, colon);
      std::string_view port = entry.substr(colon + 1);
      long value = 0;
      auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
        return Status::InvalidArgument("memha.io/pools: bad port " + Quoted(port) + " in " + Quoted(entry));
      }
      ref.port = static_cast<int>(value);
    }
    if (size_t slash = pool.find('/'); slash != std::string_view::npos) {
      ref.ns = std::string(pool.substr(0, slash));
      pool = pool.substr(slash + 1);
      if (!IsDnsLabel(ref.ns, false)) {
        return Status::InvalidArgument("memha.io/pools: bad namespace " + Quoted(ref.ns) + " in " + Quoted(entry));
      }
    }
    if (!IsDnsLabel(pool, true)) {
      return Status::InvalidArgument("memha.io/pools: bad Service name " + Quoted(pool) + " in " + Quoted(entry));
    }
    ref.name = std::string(pool);
    if (ref.port == reserved_port) {
      return Status::InvalidArgument("memha.io/pools: port " + std::to_string(ref.port) +
                                     " is the sidecar's admin port");
    }
    if (!ports.insert(ref.port).second) {
      return Status::InvalidArgument("memha.io/pools: two pools listen on port " + std::to_string(ref.port));
    }
    if (!names.insert(ref.ns + "/" + ref.name).second) {
      return Status::InvalidArgument("memha.io/pools: pool " + Quoted(entry) + " is listed twice");
    }
    pools.push_back(std::move(ref));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return pools;
}

}  // namespace memha::webhook
