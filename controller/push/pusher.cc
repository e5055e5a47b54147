#include "controller/push/pusher.h"

#include <httplib.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/crypto/push_signature.h"
#include "common/log.h"

namespace memha::push {
namespace {

bool SameGeneration(const std::shared_ptr<const Topology>& a, const std::shared_ptr<const Topology>& b) {
  if (a == b) return true;
  return a && b && a->SameGeneration(*b);
}

}  // namespace

std::string_view ToString(PushResult result) {
  switch (result) {
    case PushResult::kOk: return "ok";
    case PushResult::kRefused: return "refused";
    case PushResult::kRejected: return "rejected";
    case PushResult::kError: return "error";
    case PushResult::kTimeout: return "timeout";
    case PushResult::kCount: break;
  }
  return "unknown";
}

Status PusherOptions::Validate() const {
  if (parallelism < 1 || parallelism > 1024) return Status::InvalidArgument("push parallelism must be 1-1024");
  if (connect_timeout.count() <= 0 || request_timeout.count() <= 0) {
    return Status::InvalidArgument("push timeouts must be positive");
  }
  if (backoff_initial.count() <= 0 || backoff_max < backoff_initial) {
    return Status::InvalidArgument("push backoff: need 0 < initial <= max");
  }
  if (resync.count() <= 0 || refused_retry.count() <= 0) {
    return Status::InvalidArgument("resync and refused retry must be positive");
  }
  return Status::Ok();
}

TopologyPusher::TopologyPusher(PusherOptions options, PushObserver* observer)
    : options_(std::move(options)), observer_(observer) {}

TopologyPusher::~TopologyPusher() { Stop(); }

void TopologyPusher::Start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  running_ = true;
  auto now = Clock::now();
  for (auto& [pod, e] : entries_) {
    e.backoff_until = {};
    e.reset = false;  // a reset is only ever the answer to a refusal seen while leading
    if (!e.address.empty()) Schedule(pod, e, now);
  }
  for (size_t i = 0; i < options_.parallelism; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  MEMHA_LOG(kInfo, "push", "pusher started workers=" << options_.parallelism << " sidecars=" << entries_.size());
}

void TopologyPusher::Stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    stopping_ = true;
    for (httplib::Client* c : active_) c->stop();  // abort requests in flight; they complete as errors
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (std::thread& t : workers) t.join();
  std::lock_guard lock(mu_);
  stopping_ = false;
  running_ = false;
  MEMHA_LOG(kInfo, "push", "pusher stopped");
}

bool TopologyPusher::Running() const {
  std::lock_guard lock(mu_);
  return running_;
}

void TopologyPusher::Set(const PushTarget& target) {
  std::lock_guard lock(mu_);
  SetLocked(target);
}

void TopologyPusher::Replace(const std::vector<PushTarget>& targets) {
  std::lock_guard lock(mu_);
  std::set<std::string> keep;
  for (const PushTarget& t : targets) {
    keep.insert(t.pod);
    SetLocked(t);
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (keep.count(it->first) > 0) {
      ++it;
      continue;
    }
    Unschedule(it->first, it->second);
    it = entries_.erase(it);
  }
}

void TopologyPusher::Remove(const std::string& pod) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pod);
  if (it == entries_.end()) return;
  Unschedule(pod, it->second);
  entries_.erase(it);
}

void TopologyPusher::SetLocked(const PushTarget& target) {
  if (!target.topology) return;
  auto [it, inserted] = entries_.try_emplace(target.pod);
  Entry& e = it->second;
  if (inserted) e.id = ++next_id_;
  bool new_address = e.address != target.address || e.uid != target.uid;
  bool new_state = !SameGeneration(e.desired, target.topology);
  if (!inserted && !new_address && !new_state) return;
  e.desired = target.topology;
  e.address = target.address;
  e.uid = target.uid;
  e.status.address = target.address;
  e.status.desired_epoch = target.topology->epoch;
  e.status.desired_version = target.topology->version;
  if (new_address) {
    e.backoff_until = {};  // a new pod IP is a new sidecar process: old failures and acks say nothing about it
    e.status.failures = 0;
    e.status.acked = false;
  }
  if (e.address.empty()) {
    Unschedule(target.pod, e);
    return;
  }
  if (e.in_flight) return;  // Complete() sees the newer state and sends it next
  Schedule(target.pod, e, std::max(Clock::now(), e.backoff_until));
}

void TopologyPusher::Schedule(const std::string& pod, Entry& e, Clock::time_point when) {
  if (e.scheduled) {
    if (e.due == when) return;
    due_.erase({e.due, pod});
  }
  e.scheduled = true;
  e.due = when;
  bool first = due_.empty() || when < due_.begin()->first;
  due_.emplace(when, pod);
  if (first) cv_.notify_one();
}

void TopologyPusher::Unschedule(const std::string& pod, Entry& e) {
  if (!e.scheduled) return;
  due_.erase({e.due, pod});
  e.scheduled = false;
}

Clock::duration TopologyPusher::Jitter(Clock::duration base, double low, double high) {
  std::uniform_real_distribution<double> d(low, high);
  return std::chrono::duration_cast<Clock::duration>(base * d(rng_));
}

void TopologyPusher::WorkerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = due_.begin();
    if (Clock::time_point when = first->first; when > Clock::now()) {
      cv_.wait_until(lock, when);  // a copy: the set's node may be erased while we wait
      continue;
    }
    std::string pod = first->second;
    due_.erase(first);
    Entry& e = entries_.at(pod);
    e.scheduled = false;
    e.in_flight = true;
    e.sent = e.desired;
    e.sent_address = e.address;
    uint64_t id = e.id;
    std::string address = e.address;
    std::string uid = e.uid;
    const bool reset = e.reset;
    std::shared_ptr<const Topology> sent = e.sent;
    const int failures_before = e.status.failures;
    const std::optional<PushResult> result_before = e.status.last_result;
    const std::string error_before = e.status.last_error;
    if (!due_.empty()) cv_.notify_one();  // another worker may take the next one
    lock.unlock();

    std::string body = TopologyToJson(*sent);
    std::string error;
    auto start = Clock::now();
    std::optional<uint64_t> held_epoch;
    PushResult result = Send(address, pod, uid, reset, body, &error, &held_epoch);
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (observer_ != nullptr) observer_->OnPush(result, seconds);
    // A sidecar that stays unreachable (a pod without its sidecar, one being deleted) is retried every
    // backoff_max for as long as its pod exists: warn when a failure starts or changes, not on every retry.
    const bool same_failure =
        failures_before > 0 && result_before == result && error_before == error && result != PushResult::kOk;
    if (result == PushResult::kOk) {
      if (failures_before > 0) {
        MEMHA_LOG(kInfo, "push", "push ok again pod=" << pod << " address=" << address << " after_failures="
                                                      << failures_before << " epoch=" << sent->epoch
                                                      << " version=" << sent->version);
      }
      MEMHA_LOG(kDebug, "push", "pushed pod=" << pod << " address=" << address << " epoch=" << sent->epoch
                                              << " version=" << sent->version << " seconds=" << seconds);
    } else if (same_failure) {
      MEMHA_LOG(kDebug, "push", "push failed again pod=" << pod << " address=" << address << " result="
                                                         << ToString(result) << " failures=" << failures_before + 1
                                                         << " error=\"" << error << "\"");
    } else if (result == PushResult::kRefused) {
      MEMHA_LOG(kInfo, "push", "push refused (the sidecar has a newer generation) pod="
                                   << pod << " address=" << address << " epoch=" << sent->epoch
                                   << " version=" << sent->version << " error=\"" << error << "\"");
    } else {
      MEMHA_LOG(kWarn, "push", "push failed pod=" << pod << " address=" << address << " result=" << ToString(result)
                                                  << " epoch=" << sent->epoch << " version=" << sent->version
                                                  << " error=\"" << error << "\" (retried with backoff; logged "
                                                     "again when the error changes)");
    }
    // The Lease is read outside the lock: only for a refusal naming an epoch above ours.
    bool reset_confirmed = false;
    if (result == PushResult::kRefused && !reset && held_epoch && *held_epoch > sent->epoch &&
        options_.signer != nullptr && options_.confirm_reset) {
      reset_confirmed = options_.confirm_reset(*held_epoch);
      if (!reset_confirmed) {
        MEMHA_LOG(kInfo, "push", "sidecar holds epoch " << *held_epoch << " above ours (" << sent->epoch
                                                         << ") and the Lease does not rule it out: no reset pod=" << pod);
      }
    }
    lock.lock();
    Complete(pod, id, result, error, held_epoch, reset, reset_confirmed);
  }
}

void TopologyPusher::Complete(const std::string& pod, uint64_t id, PushResult result, const std::string& error,
                              std::optional<uint64_t> held_epoch, bool was_reset, bool reset_confirmed) {
  auto it = entries_.find(pod);
  if (it == entries_.end() || it->second.id != id) return;  // removed meanwhile
  Entry& e = it->second;
  e.in_flight = false;
  if (was_reset) e.reset = false;
  std::shared_ptr<const Topology> sent = std::move(e.sent);
  e.status.last_result = result;
  e.status.last_error = error;
  auto now = Clock::now();
  // A newer state, or the pod moved to a new address while this was in flight: send again at once.
  bool newer_waiting = !SameGeneration(e.desired, sent) || e.sent_address != e.address;
  switch (result) {
    case PushResult::kOk:
      if (e.sent_address != e.address) break;  // acknowledged by the old address only
      e.status.acked = true;
      e.status.acked_epoch = sent->epoch;
      e.status.acked_version = sent->version;
      e.status.failures = 0;
      e.backoff_until = {};
      break;
    case PushResult::kRefused:
      // The sidecar holds an epoch above ours, and the Lease (read just now) shows no leader ever had it: epochs
      // are the Lease's transitions and only grow, so it was forged or comes from elsewhere. Recover with a signed
      // reset, once per refusal.
      if (options_.signer != nullptr && !was_reset && held_epoch && *held_epoch > sent->epoch && !e.address.empty() &&
          reset_confirmed) {
        MEMHA_LOG(kWarn, "push", "sidecar holds epoch " << *held_epoch << " above the leader's " << sent->epoch
                                                        << ": sending a signed reset pod=" << pod);
        e.reset = true;
        ++e.status.resets;
        e.status.failures = 0;
        e.backoff_until = {};
        Schedule(pod, e, now);
        return;
      }
      // Someone newer owns this sidecar: not retried hot. A newer state of ours is still sent at once.
      e.status.failures = 0;
      e.backoff_until = {};
      if (!e.address.empty()) {
        Schedule(pod, e, newer_waiting ? now : now + Jitter(options_.refused_retry, 0.9, 1.1));
      }
      return;
    case PushResult::kRejected:
    case PushResult::kError:
    case PushResult::kTimeout: {
      int n = std::min(e.status.failures++, 20);
      auto wait = std::min<Clock::duration>(options_.backoff_initial * (int64_t{1} << n), options_.backoff_max);
      e.backoff_until = now + Jitter(wait, 0.5, 1.0);  // "equal jitter": never retried in lockstep
      if (!e.address.empty()) Schedule(pod, e, e.backoff_until);
      return;
    }
    case PushResult::kCount:
      return;
  }
  if (e.address.empty()) return;
  Schedule(pod, e, newer_waiting ? now : now + Jitter(options_.resync, 0.9, 1.1));
}

PushResult TopologyPusher::Send(const std::string& address, const std::string& pod, const std::string& uid,
                                bool reset, const std::string& body, std::string* error,
                                std::optional<uint64_t>* held_epoch) {
  auto hp = ParseHostPort(address);
  if (!hp.ok()) {
    *error = hp.status().message();
    return PushResult::kRejected;
  }
  httplib::Client client(hp.value().host, hp.value().port);
  client.set_keep_alive(false);
  client.set_connection_timeout(options_.connect_timeout);
  client.set_read_timeout(options_.request_timeout);
  client.set_write_timeout(options_.request_timeout);
  httplib::Headers headers;
  if (options_.signer != nullptr) {
    auto signed_headers = options_.signer->Sign(pod, uid, reset, body);
    if (!signed_headers.ok()) {
      *error = "cannot sign: " + signed_headers.status().message();
      return PushResult::kError;
    }
    for (auto& [name, value] : signed_headers.value()) headers.emplace(name, value);
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      *error = "stopping";
      return PushResult::kError;
    }
    active_.insert(&client);
  }
  auto start = Clock::now();
  httplib::Result res = client.Put("/v1/topology", headers, body, "application/json");
  auto elapsed = Clock::now() - start;
  {
    std::lock_guard lock(mu_);
    active_.erase(&client);
  }
  if (!res) {
    httplib::Error err = res.error();
    *error = httplib::to_string(err);
    if (err == httplib::Error::ConnectionTimeout) return PushResult::kTimeout;
    if ((err == httplib::Error::Read || err == httplib::Error::Write) &&
        elapsed >= options_.request_timeout - std::chrono::milliseconds(50)) {
      *error = "no answer within " + std::to_string(options_.request_timeout.count()) + " ms";
      return PushResult::kTimeout;
    }
    return PushResult::kError;
  }
  int status = res->status;
  if (status == 200) return PushResult::kOk;
  *error = "HTTP " + std::to_string(status) + ": " + res->body.substr(0, 300);
  while (!error->empty() && error->back() == '\n') error->pop_back();
  if (status == 409) {
    try {
      auto reply = nlohmann::json::parse(res->body);
      if (reply.contains("held_epoch") && reply["held_epoch"].is_number_unsigned()) {
        *held_epoch = reply["held_epoch"].get<uint64_t>();
      }
    } catch (const std::exception&) {  // an older sidecar's plain reason: no reset
    }
    return PushResult::kRefused;
  }
  if (status >= 400 && status < 500) return PushResult::kRejected;
  return PushResult::kError;
}

size_t TopologyPusher::Size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

size_t TopologyPusher::Behind() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(), [](const auto& kv) {
    return !kv.second.address.empty() && !kv.second.status.UpToDate();
  }));
}

std::optional<SidecarStatus> TopologyPusher::Sidecar(const std::string& pod) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pod);
  if (it == entries_.end()) return std::nullopt;
  return it->second.status;
}

}  // namespace memha::push
