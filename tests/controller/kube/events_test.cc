#include "controller/kube/events.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace memha::kube {
namespace {

using nlohmann::json;

// Records requests; answers with the status queued for the method (default 201 for POST, 200 otherwise).
class RecordingApi : public KubeApi {
 public:
  struct Call {
    std::string method, path, body, content_type;
  };
  Result<ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body,
                              std::string_view content_type) override {
    calls.push_back({std::string(method), path, body, std::string(content_type)});
    ApiResponse r;
    r.status = method == "POST" ? 201 : 200;
    if (!next_status.empty()) {
      r.status = next_status.front();
      next_status.erase(next_status.begin());
    }
    return r;
  }
  Result<ApiResponse> Stream(const std::string&, const std::function<bool(std::string_view)>&) override {
    return Status::Unavailable("no");
  }
  void Cancel() override {}
  std::vector<Call> calls;
  std::vector<int> next_status;
};

const ObjectRef kService{"Service", "shop", "cache-a", "uid-1"};

TEST(RecordEvent, CreatesACoreV1Event) {
  RecordingApi api;
  auto t = std::chrono::system_clock::from_time_t(1700000000);
  Status s = RecordEvent(api, kService, EventType::kWarning, "BadAnnotation", "memha.io/write-policy: \"fast\"",
                         "memha-controller", "pod-1", t);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(api.calls.size(), 1u);
  EXPECT_EQ(api.calls[0].method, "POST");
  EXPECT_EQ(api.calls[0].path, "/api/v1/namespaces/shop/events");
  json ev = json::parse(api.calls[0].body);
  EXPECT_EQ(ev["involvedObject"], json::parse(R"({"kind":"Service","namespace":"shop","name":"cache-a",
                                                  "uid":"uid-1","apiVersion":"v1"})"));
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["reason"], "BadAnnotation");
  EXPECT_EQ(ev["message"], "memha.io/write-policy: \"fast\"");
  EXPECT_EQ(ev["count"], 1);
  EXPECT_EQ(ev["firstTimestamp"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(ev["source"]["component"], "memha-controller");
  EXPECT_EQ(ev["reportingInstance"], "pod-1");
  EXPECT_EQ(ev["metadata"]["namespace"], "shop");
  EXPECT_EQ(ev["metadata"]["name"].get<std::string>().rfind("cache-a.", 0), 0u);
}

TEST(RecordEvent, FailureIsReported) {
  RecordingApi api;
  api.next_status = {403};
  EXPECT_FALSE(RecordEvent(api, kService, EventType::kNormal, "R", "m").ok());
}

TEST(EventRecorder, DeduplicatesWithinTheWindowByBumpingCount) {
  RecordingApi api;
  FakeClock clock;
  EventRecorder rec(api, "memha-controller", "pod-1", clock);
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "BadAnnotation", "bad").ok());
  clock.Advance(std::chrono::minutes(1));
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "BadAnnotation", "bad").ok());
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "BadAnnotation", "bad").ok());
  ASSERT_EQ(api.calls.size(), 3u);
  std::string name = json::parse(api.calls[0].body)["metadata"]["name"];
  EXPECT_EQ(api.calls[1].method, "PATCH");
  EXPECT_EQ(api.calls[1].path, "/api/v1/namespaces/shop/events/" + name);
  EXPECT_EQ(api.calls[1].content_type, "application/merge-patch+json");
  EXPECT_EQ(json::parse(api.calls[1].body)["count"], 2);
  EXPECT_EQ(json::parse(api.calls[2].body)["count"], 3);
  // A different message is a different event.
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "BadAnnotation", "other").ok());
  EXPECT_EQ(api.calls[3].method, "POST");
  // After the window: a new Event.
  clock.Advance(std::chrono::minutes(6));
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "BadAnnotation", "bad").ok());
  EXPECT_EQ(api.calls[4].method, "POST");
}

TEST(EventRecorder, RecreatesAnEventThatExpiredOnTheServer) {
  RecordingApi api;
  FakeClock clock;
  EventRecorder rec(api, "memha-controller", "pod-1", clock);
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "R", "m").ok());
  api.next_status = {404};
  ASSERT_TRUE(rec.Record(kService, EventType::kWarning, "R", "m").ok());
  ASSERT_EQ(api.calls.size(), 3u);
  EXPECT_EQ(api.calls[1].method, "PATCH");
  EXPECT_EQ(api.calls[2].method, "POST");
}

TEST(EventRecorder, LongMessagesAreCut) {
  RecordingApi api;
  EventRecorder rec(api, "c", "i");
  ASSERT_TRUE(rec.Record(kService, EventType::kNormal, "R", std::string(5000, 'x')).ok());
  EXPECT_EQ(json::parse(api.calls[0].body)["message"].get<std::string>().size(), 1024u);
}

TEST(FormatTime, MicroTime) {
  auto t = std::chrono::system_clock::from_time_t(1700000000) + std::chrono::microseconds(42);
  EXPECT_EQ(FormatMicroTime(t), "2023-11-14T22:13:20.000042Z");
  EXPECT_EQ(FormatTime(t), "2023-11-14T22:13:20Z");
}

}  // namespace
}  // namespace memha::kube
