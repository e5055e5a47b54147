#pragma once
// List + watch of one kind (cluster-wide) into the Store, as an explicit state machine (client-go's reflector,
// kube-rs's watcher):
//
//   kList ---ok---> kWatch ---clean end / 200 with events---> kWatch (same resourceVersion, no relist)
//     ^               |---410 Gone (HTTP or in-stream ERROR)--> kList (at once; the cache is swapped when done)
//     |               |---transport error, 5xx, 429, bad event--> kBackoff --> kWatch
//     |               `---other 4xx (401/403/404)--------------> kBackoff --> kList
//     `-- error ---> kBackoff ---> kList
//
// - List: paged (limit/continue); the pages are collected and swapped into the Store in one Replace*, which
//   synthesizes deletes for objects that went away. An expired continue token (410) restarts the list.
// - Watch: from the list's resourceVersion, allowWatchBookmarks=true, timeoutSeconds jittered in
//   [min_watch_timeout, max_watch_timeout]. ADDED/MODIFIED/DELETED go to the Store; BOOKMARK only advances
//   the resourceVersion; every event's resourceVersion is remembered for the next watch.
// - Backoff: exponential with jitter (BackoffPolicy), reset by a successful list or an answered watch;
//   Retry-After (429/503) is honoured, capped at max_retry_after.
//
// Use (one watcher per kind, each with its own KubeApi since Stop() cancels that API's streams):
//   auto pods = watch::NewPodWatcher(*pods_api, store);
//   std::thread t([&] { pods->Run(); });   ...   pods->Stop(); t.join();
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "controller/kube/api.h"
#include "controller/kube/clock.h"
#include "controller/model/store.h"
#include "controller/watch/backoff.h"
#include "controller/watch/line_splitter.h"
#include "controller/watch/sink.h"

namespace memha::watch {

// Plain counters for the metrics module (monotonic; read with load()). One set per watcher.
struct WatchCounters {
  std::atomic<uint64_t> lists{0};           // complete lists swapped into the Store (the first one included)
  std::atomic<uint64_t> relists{0};         // complete lists after the first (410 Gone, errors)
  std::atomic<uint64_t> list_pages{0};      // list requests answered 200
  std::atomic<uint64_t> watch_restarts{0};  // watch requests after the first one following a list
  std::atomic<uint64_t> events{0};          // ADDED / MODIFIED / DELETED applied to the Store
  std::atomic<uint64_t> bookmarks{0};       // BOOKMARK events
  std::atomic<uint64_t> gone{0};            // 410 Gone (HTTP, in-stream ERROR, expired continue token)
  std::atomic<uint64_t> throttled{0};       // 429 Too Many Requests
  std::atomic<uint64_t> errors{0};          // transport errors, 5xx/4xx answers, undecodable events or objects
  std::atomic<uint64_t> backoffs{0};        // waits before a retry
  std::atomic<bool> synced{false};          // the first full list is in the Store
};

struct WatchOptions {
  std::string list_path = "/api/v1/pods";  // cluster-wide collection path
  std::string kind = "pods";               // for logs
  int page_size = 500;
  std::chrono::seconds min_watch_timeout{240};  // must stay below HttpOptions::stream_idle_timeout
  std::chrono::seconds max_watch_timeout{360};
  BackoffPolicy backoff;
  kube::Duration max_retry_after = std::chrono::minutes(5);
  uint64_t seed = 0;  // 0: random
};

enum class WatchState { kList, kWatch, kBackoff, kStopped };
const char* WatchStateName(WatchState s);

class Watcher {
 public:
  Watcher(kube::KubeApi& api, std::unique_ptr<WatchSink> sink, WatchOptions options,
          kube::Clock& clock = kube::RealClock::Instance());

  void Run();              // Step() until stopped
  void Stop();             // any thread: wakes a backoff sleep and cancels the stream in progress
  WatchState Step();       // one transition; returns the new state (tests drive the machine with it)

  WatchState state() const;
  std::string resource_version() const;
  const WatchCounters& counters() const { return counters_; }

 private:
  enum class StreamEnd { kNone, kGone, kErrorEvent, kBadEvent };
  void List();
  void Watch();
  void BackoffThen(WatchState next, const kube::ApiResponse* response);
  bool HandleLine(std::string_view line);  // false: stop the stream
  void SetState(WatchState s);
  void SetResourceVersion(std::string rv);
  std::string WatchPath();

  kube::KubeApi& api_;
  std::unique_ptr<WatchSink> sink_;
  const WatchOptions options_;
  kube::Clock& clock_;
  kube::StopSignal stop_;
  Backoff backoff_;
  std::mt19937_64 rng_;
  LineSplitter splitter_;
  WatchCounters counters_;

  mutable std::mutex mu_;  // state_ and resource_version_, read by other threads
  WatchState state_ = WatchState::kList;
  std::string resource_version_;

  // Owned by the Run thread.
  WatchState after_backoff_ = WatchState::kList;
  kube::Duration backoff_delay_{};
  bool listed_once_ = false;
  bool watched_since_list_ = false;
  uint64_t lines_in_stream_ = 0;
  StreamEnd stream_end_ = StreamEnd::kNone;
};

std::unique_ptr<Watcher> NewPodWatcher(kube::KubeApi& api, model::Store& store, WatchOptions options = {},
                                       kube::Clock& clock = kube::RealClock::Instance());
std::unique_ptr<Watcher> NewServiceWatcher(kube::KubeApi& api, model::Store& store, WatchOptions options = {},
                                           kube::Clock& clock = kube::RealClock::Instance());

}  // namespace memha::watch
