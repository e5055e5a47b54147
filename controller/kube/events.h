#pragma once
// Kubernetes Events (core/v1) on the objects a user touches, e.g. a Service with a bad memha.io annotation:
// `kubectl describe service cache-a` then shows why the controller ignored it.
//
//   kube::EventRecorder events(*api, "memha-controller", pod_name);
//   events.Record({"Service", "shop", "cache-a", uid}, kube::EventType::kWarning, "BadAnnotation",
//                 "memha.io/write-policy: unknown policy \"fast\"");
//
// The recorder deduplicates: the same (object, type, reason, message) within `dedupe_window` bumps the count
// and lastTimestamp of the existing Event (PATCH) instead of creating a new one, as client-go's recorder does.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"
#include "controller/kube/api.h"
#include "controller/kube/clock.h"

namespace memha::kube {

struct ObjectRef {
  std::string kind;  // "Service", "Pod"
  std::string ns;
  std::string name;
  std::string uid;
  std::string api_version = "v1";
};

enum class EventType { kNormal, kWarning };

// Creates one Event (no dedupe). `now` is the wall-clock time written into the Event.
Status RecordEvent(KubeApi& api, const ObjectRef& object, EventType type, std::string_view reason,
                   std::string_view message, std::string_view component = "memha-controller",
                   std::string_view instance = "",
                   std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

class EventRecorder {
 public:
  EventRecorder(KubeApi& api, std::string component, std::string instance, Clock& clock = RealClock::Instance(),
                Duration dedupe_window = std::chrono::minutes(5));
  // Thread-safe. Errors are returned (and logged by nobody here): an Event is best effort.
  Status Record(const ObjectRef& object, EventType type, std::string_view reason, std::string_view message);

  // Tests: the wall clock written into Events.
  void SetWallClock(std::function<std::chrono::system_clock::time_point()> now) { wall_ = std::move(now); }

 private:
  struct Seen {
    std::string event_name;
    int count = 0;
    SteadyTime last{};
    std::string first_timestamp;
  };
  KubeApi& api_;
  const std::string component_;
  const std::string instance_;
  Clock& clock_;
  const Duration window_;
  std::function<std::chrono::system_clock::time_point()> wall_ = [] { return std::chrono::system_clock::now(); };
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // key: ns/kind/name/uid/type/reason/message
};

// RFC 3339 UTC with seconds ("2024-05-01T12:00:00Z") and with microseconds (MicroTime, for Leases).
std::string FormatTime(std::chrono::system_clock::time_point t);
std::string FormatMicroTime(std::chrono::system_clock::time_point t);

}  // namespace memha::kube
