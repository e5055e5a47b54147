#include "controller/topology/annotations.h"

#include <charconv>
#include <map>
#include <set>

namespace memha::topology {
namespace {

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  while (!s.empty() && kSpace.find(s.front()) != std::string_view::npos) s.remove_prefix(1);
  while (!s.empty() && kSpace.find(s.back()) != std::string_view::npos) s.remove_suffix(1);
  return s;
}

// RFC 1123 label (namespaces); RFC 1035 label (Service names) when it must also start with a letter.
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

Result<std::string> ParseServiceRef(std::string_view text, std::string_view default_namespace) {
  text = Trim(text);
  std::string_view ns = default_namespace;
  std::string_view name = text;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    ns = Trim(text.substr(0, slash));
    name = Trim(text.substr(slash + 1));
    if (!IsDnsLabel(ns, false)) {
      return Status::InvalidArgument("bad namespace " + Quoted(ns) + " in " + Quoted(text) +
                                     " (lower-case letters, digits and '-')");
    }
  }
  if (!IsDnsLabel(name, true)) {
    return Status::InvalidArgument("bad Service name " + Quoted(name) + " in " + Quoted(text) +
                                   " (lower-case letters, digits and '-', starting with a letter)");
  }
  return std::string(ns) + "/" + std::string(name);
}

Result<std::vector<PoolRef>> ParsePoolsAnnotation(std::string_view text, std::string_view pod_namespace,
                                                  const PoolsAnnotationOptions& options) {
  std::vector<PoolRef> refs;
  std::set<std::string> services;
  std::map<uint16_t, bool> ports;  // local port -> taken by a pool without ":port"
  if (Trim(text).empty()) return Status::InvalidArgument("empty: name at least one pool Service");
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view entry = Trim(text.substr(start, comma - start));
    start = comma + 1;
    if (entry.empty()) return Status::InvalidArgument("empty entry in " + Quoted(Trim(text)));
    PoolRef ref{.service = {}, .local_port = options.default_port};
    std::string_view pool = entry;
    const size_t colon = entry.find(':');
    const bool defaulted = colon == std::string_view::npos;
    if (!defaulted) {
      pool = entry.substr(0, colon);
      std::string_view port_text = Trim(entry.substr(colon + 1));
      unsigned port = 0;
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
          port > 65535) {
        return Status::InvalidArgument("bad port " + Quoted(port_text) + " in " + Quoted(entry));
      }
      ref.local_port = static_cast<uint16_t>(port);
    }
    auto service = ParseServiceRef(pool, pod_namespace);
    if (!service.ok()) return service.status();
    ref.service = std::move(service).value();
    if (ref.local_port == options.admin_port) {
      return Status::InvalidArgument("port " + std::to_string(ref.local_port) + " is the sidecar's admin port");
    }
    if (ref.local_port == options.health_port) {
      return Status::InvalidArgument("port " + std::to_string(ref.local_port) + " is the sidecar's health port");
    }
    if (!services.insert(ref.service).second) {
      return Status::Conflict("pool " + ref.service + " is listed twice (" + Quoted(entry) + ")");
    }
    if (auto [it, inserted] = ports.emplace(ref.local_port, defaulted); !inserted) {
      return Status::Conflict("two pools listen on port " + std::to_string(ref.local_port) +
                              (defaulted || it->second ? " (a pool without :port listens there)" : ""));
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

Result<bool> ParseSocketAnnotation(std::string_view text) { return ParseWarmupAnnotation(text); }

std::string SocketPath(const std::string& service_key, std::string_view pod_namespace) {
  size_t slash = service_key.find('/');
  std::string ns = service_key.substr(0, slash), name = service_key.substr(slash + 1);
  return std::string(kSocketDir) + "/" + (ns == pod_namespace ? name : ns + "." + name) + ".sock";
}

bool AllowsNamespace(const model::ServiceInfo& service, std::string_view ns) {
  if (service.meta.ns == ns) return true;
  auto it = service.meta.annotations.find(std::string(kAllowFromAnnotation));
  if (it == service.meta.annotations.end()) return false;
  std::string_view list = it->second;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view entry = list.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    if (entry == "*" || entry == ns) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace memha::topology
