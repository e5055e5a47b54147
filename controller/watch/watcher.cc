#include "controller/watch/watcher.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "controller/kube/parse.h"

namespace memha::watch {
namespace {

using nlohmann::json;

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string Brief(std::string_view body) {
  std::string s(body.substr(0, 200));
  for (char& c : s) if (c == '\n') c = ' ';
  return s;
}

bool Retryable(int status) { return status == 429 || status >= 500; }

uint64_t Seed(uint64_t seed) { return seed != 0 ? seed : std::random_device{}(); }

}  // namespace

const char* WatchStateName(WatchState s) {
  switch (s) {
    case WatchState::kList: return "list";
    case WatchState::kWatch: return "watch";
    case WatchState::kBackoff: return "backoff";
    case WatchState::kStopped: return "stopped";
  }
  return "?";
}

Watcher::Watcher(kube::KubeApi& api, std::unique_ptr<WatchSink> sink, WatchOptions options, kube::Clock& clock)
    : api_(api),
      sink_(std::move(sink)),
      options_(std::move(options)),
      clock_(clock),
      backoff_(options_.backoff, Seed(options_.seed)),
      rng_(Seed(options_.seed) + 1) {}

WatchState Watcher::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::string Watcher::resource_version() const {
  std::lock_guard lock(mu_);
  return resource_version_;
}

void Watcher::SetState(WatchState s) {
  std::lock_guard lock(mu_);
  state_ = s;
}

void Watcher::SetResourceVersion(std::string rv) {
  if (rv.empty()) return;
  std::lock_guard lock(mu_);
  resource_version_ = std::move(rv);
}

void Watcher::Run() {
  MEMHA_LOG(kInfo, "watch", "kind=" << options_.kind << " starting");
  while (Step() != WatchState::kStopped) {
  }
  MEMHA_LOG(kInfo, "watch", "kind=" << options_.kind << " stopped");
}

void Watcher::Stop() {
  stop_.Stop();
  api_.Cancel();
}

WatchState Watcher::Step() {
  if (stop_.Stopped()) {
    SetState(WatchState::kStopped);
    return WatchState::kStopped;
  }
  switch (state()) {
    case WatchState::kList:
      List();
      break;
    case WatchState::kWatch:
      Watch();
      break;
    case WatchState::kBackoff:
      counters_.backoffs++;
      if (clock_.Sleep(backoff_delay_, stop_)) SetState(WatchState::kStopped);
      else SetState(after_backoff_);
      break;
    case WatchState::kStopped:
      break;
  }
  if (stop_.Stopped()) SetState(WatchState::kStopped);
  return state();
}

void Watcher::BackoffThen(WatchState next, const kube::ApiResponse* response) {
  kube::Duration delay = backoff_.Next();
  if (response != nullptr) {
    auto it = response->headers.find("retry-after");
    if (it != response->headers.end()) {
      if (auto ra = ParseRetryAfter(it->second)) delay = std::max(delay, std::min(*ra, options_.max_retry_after));
    }
  }
  backoff_delay_ = delay;
  after_backoff_ = next;
  SetState(WatchState::kBackoff);
  MEMHA_LOG(kDebug, "watch", "kind=" << options_.kind << " backoff_ms="
                                     << std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()
                                     << " then=" << WatchStateName(next));
}

void Watcher::List() {
  sink_->BeginList();
  std::string continue_token;
  std::string rv;
  int restarts = 0;
  for (;;) {
    if (stop_.Stopped()) return;
    std::string path = options_.list_path + "?limit=" + std::to_string(options_.page_size);
    if (!continue_token.empty()) path += "&continue=" + UrlEncode(continue_token);
    auto r = api_.Request("GET", path);
    if (!r.ok()) {
      counters_.errors++;
      MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " list failed: " << r.status().message());
      return BackoffThen(WatchState::kList, nullptr);
    }
    const kube::ApiResponse& resp = r.value();
    if (resp.status == 410 && !continue_token.empty() && restarts < 3) {
      // The continue token expired (compaction): start the list over.
      counters_.gone++;
      ++restarts;
      continue_token.clear();
      sink_->BeginList();
      continue;
    }
    if (resp.status != 200) {
      counters_.errors++;
      if (resp.status == 429) counters_.throttled++;
      MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " list status=" << resp.status << " " << Brief(resp.body));
      return BackoffThen(WatchState::kList, &resp);
    }
    auto page = kube::ParseListPage(resp.body);
    if (!page.ok()) {
      counters_.errors++;
      MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " list: " << page.status().message());
      return BackoffThen(WatchState::kList, nullptr);
    }
    counters_.list_pages++;
    for (const json& item : page.value().items) {
      Status s = sink_->AddListItem(item);
      if (!s.ok()) {
        counters_.errors++;
        MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " skipped a listed object: " << s.message());
      }
    }
    rv = page.value().resource_version;
    continue_token = page.value().continue_token;
    if (continue_token.empty()) break;
  }
  sink_->CommitList();
  counters_.lists++;
  if (listed_once_) counters_.relists++;
  listed_once_ = true;
  counters_.synced = true;
  SetResourceVersion(rv);
  backoff_.Reset();
  watched_since_list_ = false;
  MEMHA_LOG(kInfo, "watch", "kind=" << options_.kind << " listed resourceVersion=" << rv);
  SetState(WatchState::kWatch);
}

std::string Watcher::WatchPath() {
  auto lo = options_.min_watch_timeout.count();
  auto hi = std::max(lo, static_cast<decltype(lo)>(options_.max_watch_timeout.count()));
  std::uniform_int_distribution<long long> timeout(lo, hi);
  return options_.list_path + "?watch=1&allowWatchBookmarks=true&resourceVersion=" +
         UrlEncode(resource_version()) + "&timeoutSeconds=" + std::to_string(timeout(rng_));
}

bool Watcher::HandleLine(std::string_view line) {
  ++lines_in_stream_;
  json ev = json::parse(line, nullptr, false);
  if (ev.is_discarded() || !ev.is_object() || !ev.contains("type") || !ev["type"].is_string()) {
    MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " undecodable event: " << Brief(line));
    stream_end_ = StreamEnd::kBadEvent;
    return false;
  }
  const std::string& type = ev["type"].get_ref<const std::string&>();
  const json& object = ev.contains("object") ? ev["object"] : json();
  if (type == "ERROR") {
    kube::ApiStatus st = kube::ParseApiStatus(object);
    if (st.code == 410) {
      stream_end_ = StreamEnd::kGone;
    } else {
      stream_end_ = StreamEnd::kErrorEvent;
      MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " error event code=" << st.code << " " << st.message);
    }
    return false;
  }
  std::string rv;
  if (object.is_object() && object.contains("metadata") && object["metadata"].is_object()) {
    auto it = object["metadata"].find("resourceVersion");
    if (it != object["metadata"].end() && it->is_string()) rv = it->get<std::string>();
  }
  if (type == "BOOKMARK") {
    counters_.bookmarks++;
    SetResourceVersion(std::move(rv));
    return true;
  }
  Status s;
  if (type == "ADDED" || type == "MODIFIED") {
    s = sink_->Upsert(object);
  } else if (type == "DELETED") {
    s = sink_->Erase(object);
  } else {
    s = Status::InvalidArgument("unknown event type " + type);
  }
  if (s.ok()) {
    counters_.events++;
  } else {
    // One object we cannot read must not stall the kind: skip it, keep its resourceVersion.
    counters_.errors++;
    MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " skipped a " << type << " event: " << s.message());
  }
  SetResourceVersion(std::move(rv));
  return true;
}

void Watcher::Watch() {
  if (watched_since_list_) counters_.watch_restarts++;
  watched_since_list_ = true;
  splitter_.Reset();
  stream_end_ = StreamEnd::kNone;
  lines_in_stream_ = 0;
  bool too_long = false;
  auto r = api_.Stream(WatchPath(), [&](std::string_view chunk) {
    auto outcome = splitter_.Feed(chunk, [&](std::string_view line) { return HandleLine(line); });
    if (outcome == LineSplitter::Outcome::kTooLong) too_long = true;
    return outcome == LineSplitter::Outcome::kOk;
  });
  if (stop_.Stopped()) return SetState(WatchState::kStopped);
  switch (stream_end_) {
    case StreamEnd::kGone:
      counters_.gone++;
      MEMHA_LOG(kInfo, "watch", "kind=" << options_.kind << " resourceVersion too old (in-stream 410); relisting");
      return SetState(WatchState::kList);
    case StreamEnd::kErrorEvent:
    case StreamEnd::kBadEvent:
      counters_.errors++;
      return BackoffThen(WatchState::kWatch, nullptr);
    case StreamEnd::kNone:
      break;
  }
  if (too_long) {
    counters_.errors++;
    MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " event line too long");
    return BackoffThen(WatchState::kWatch, nullptr);
  }
  if (!r.ok()) {
    counters_.errors++;
    MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " " << r.status().message());
    if (lines_in_stream_ > 0) backoff_.Reset();  // the watch worked for a while: retry soon
    return BackoffThen(WatchState::kWatch, nullptr);
  }
  const kube::ApiResponse& resp = r.value();
  if (resp.status == 200) {
    backoff_.Reset();
    if (splitter_.HasPartial()) {
      counters_.errors++;  // the server ended in the middle of an event: rewatch from the last whole one
      MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " stream ended inside an event");
    }
    // A server that closes at once over and over must not make us spin: an empty stream counts for the backoff.
    if (lines_in_stream_ == 0) return BackoffThen(WatchState::kWatch, nullptr);
    return SetState(WatchState::kWatch);
  }
  if (resp.status == 410) {
    counters_.gone++;
    MEMHA_LOG(kInfo, "watch", "kind=" << options_.kind << " resourceVersion too old (HTTP 410); relisting");
    return SetState(WatchState::kList);
  }
  counters_.errors++;
  if (resp.status == 429) counters_.throttled++;
  MEMHA_LOG(kWarn, "watch", "kind=" << options_.kind << " watch status=" << resp.status << " " << Brief(resp.body));
  BackoffThen(Retryable(resp.status) ? WatchState::kWatch : WatchState::kList, &resp);
}

std::unique_ptr<Watcher> NewPodWatcher(kube::KubeApi& api, model::Store& store, WatchOptions options,
                                       kube::Clock& clock) {
  options.list_path = "/api/v1/pods";
  options.kind = "pods";
  return std::make_unique<Watcher>(api, NewPodSink(store), std::move(options), clock);
}

std::unique_ptr<Watcher> NewServiceWatcher(kube::KubeApi& api, model::Store& store, WatchOptions options,
                                           kube::Clock& clock) {
  options.list_path = "/api/v1/services";
  options.kind = "services";
  return std::make_unique<Watcher>(api, NewServiceSink(store), std::move(options), clock);
}

}  // namespace memha::watch
