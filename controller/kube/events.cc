#include "controller/kube/events.h"

#include <ctime>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace memha::kube {
namespace {

using nlohmann::json;
constexpr size_t kMaxMessage = 1024;  // events.k8s.io caps the note at 1 KiB; keep core/v1 Events as small
constexpr size_t kMaxRemembered = 4096;

std::string Truncate(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t cut = n;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
  return std::string(s.substr(0, cut));
}

std::string EventsPath(const std::string& ns) { return "/api/v1/namespaces/" + ns + "/events"; }

std::string EventName(const ObjectRef& o, std::chrono::system_clock::time_point now) {
  char hex[32];
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(ns));
  return o.name + "." + hex;
}

Status CreateEvent(KubeApi& api, const ObjectRef& o, EventType type, std::string_view reason,
                   std::string_view message, std::string_view component, std::string_view instance,
                   const std::string& name, const std::string& first, const std::string& last, int count) {
  std::string ns = o.ns.empty() ? "default" : o.ns;
  json ev = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", name}, {"namespace", ns}}},
      {"involvedObject",
       {{"kind", o.kind}, {"namespace", o.ns}, {"name", o.name}, {"uid", o.uid}, {"apiVersion", o.api_version}}},
      {"reason", Truncate(reason, 128)},
      {"message", Truncate(message, kMaxMessage)},
      {"type", type == EventType::kWarning ? "Warning" : "Normal"},
      {"count", count},
      {"firstTimestamp", first},
      {"lastTimestamp", last},
      {"source", {{"component", std::string(component)}}},
      {"reportingComponent", std::string(component)},
      {"reportingInstance", std::string(instance)},
  };
  if (o.ns.empty()) ev["involvedObject"].erase("namespace");
  auto r = api.Request("POST", EventsPath(ns), ev.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!r.ok()) return r.status();
  if (r.value().status != 201 && r.value().status != 200)
    return Status::Unavailable("creating an Event: HTTP " + std::to_string(r.value().status) + ": " +
                               Truncate(r.value().body, 200));
  return Status::Ok();
}

}  // namespace

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatMicroTime(std::chrono::system_clock::time_point t) {
  auto since = t.time_since_epoch();
  auto secs = std::chrono::floor<std::chrono::seconds>(since);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - secs).count();
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string frac = std::to_string(1000000 + micros).substr(1);  // zero-padded to 6 digits
  return std::string(buf) + "." + frac + "Z";
}

Status RecordEvent(KubeApi& api, const ObjectRef& object, EventType type, std::string_view reason,
                   std::string_view message, std::string_view component, std::string_view instance,
                   std::chrono::system_clock::time_point now) {
  std::string ts = FormatTime(now);
  return CreateEvent(api, object, type, reason, message, component, instance, EventName(object, now), ts, ts, 1);
}

EventRecorder::EventRecorder(KubeApi& api, std::string component, std::string instance, Clock& clock,
                             Duration dedupe_window)
    : api_(api), component_(std::move(component)), instance_(std::move(instance)), clock_(clock),
      window_(dedupe_window) {}

Status EventRecorder::Record(const ObjectRef& o, EventType type, std::string_view reason, std::string_view message) {
  std::string key = o.ns + "\x1f" + o.kind + "\x1f" + o.name + "\x1f" + o.uid + "\x1f" +
                    (type == EventType::kWarning ? "W" : "N") + "\x1f" + std::string(reason) + "\x1f" +
                    Truncate(message, kMaxMessage);
  SteadyTime now = clock_.Now();
  auto wall = wall_();
  std::lock_guard lock(mu_);
  if (seen_.size() > kMaxRemembered) {
    for (auto it = seen_.begin(); it != seen_.end();) it = now - it->second.last > window_ ? seen_.erase(it) : ++it;
    if (seen_.size() > kMaxRemembered) seen_.clear();
  }
  auto it = seen_.find(key);
  std::string ns = o.ns.empty() ? "default" : o.ns;
  if (it != seen_.end() && now - it->second.last <= window_) {
    Seen& s = it->second;
    json patch = {{"count", s.count + 1}, {"lastTimestamp", FormatTime(wall)}};
    auto r = api_.Request("PATCH", EventsPath(ns) + "/" + s.event_name, patch.dump(-1, ' ', false, json::error_handler_t::replace), "application/merge-patch+json");
    if (r.ok() && r.value().status == 200) {
      ++s.count;
      s.last = now;
      return Status::Ok();
    }
    if (!r.ok()) return r.status();
    if (r.value().status != 404)
      return Status::Unavailable("updating an Event: HTTP " + std::to_string(r.value().status));
    // The Event expired on the server (1 h TTL by default): create a fresh one.
  }
  Seen s;
  s.event_name = EventName(o, wall);
  s.count = 1;
  s.last = now;
  s.first_timestamp = FormatTime(wall);
  Status st = CreateEvent(api_, o, type, reason, message, component_, instance_, s.event_name, s.first_timestamp,
                          s.first_timestamp, 1);
  if (st.ok()) seen_[key] = std::move(s);
  return st;
}

}  // namespace memha::kube
