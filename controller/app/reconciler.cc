#include "controller/app/reconciler.h"

#include "common/log.h"

namespace memha::app {
namespace {

uint64_t WallClockMillis() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

std::set<std::string> PoolServicesInUse(const topology::State& state) {
  std::set<std::string> services;
  // Every Service the pass built a pool from, including those of pods that got no topology from it (an empty
  // pool, another pool missing): the member that joins next is the one that matters.
  for (const auto& [service, base] : state.pools) services.insert(service);
  for (const auto& [pod, sidecar] : state.sidecars) {
    for (const auto& ref : sidecar.refs) services.insert(ref.service);
  }
  std::set<std::string> backups;
  for (const std::string& service : services) {
    if (auto it = state.settings.find(service); it != state.settings.end() && !it->second.backup.empty()) {
      backups.insert(it->second.backup);
    }
  }
  services.merge(backups);
  return services;
}

Reconciler::Reconciler(model::Store& store, push::TopologyPusher& pusher, admin::ControllerMetrics* metrics,
                       ReconcileOptions options, ErrorSink on_new_error)
    : store_(store), pusher_(pusher), metrics_(metrics), options_(std::move(options)),
      on_new_error_(std::move(on_new_error)) {
  // Versions start at the wall clock in ms: a restarted process that somehow kept its epoch still goes up,
  // as long as it made fewer than 1000 passes per second before (passes are coalesced; see docs/CONTROLLER.md).
  state_.version = options_.version_seed != 0 ? options_.version_seed : WallClockMillis();
  current_ = std::make_shared<topology::State>(state_);
}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() {
  std::lock_guard lock(loop_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Reconciler::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::StartLeading(uint64_t epoch) {
  MEMHA_LOG(kInfo, "reconcile", "leading epoch=" << epoch);
  epoch_ = epoch;
  leading_ = true;
  restamp_ = true;
  loop_cv_.notify_all();
}

void Reconciler::StopLeading() {
  std::lock_guard pass(pass_mu_);
  bool was_leading = leading_.exchange(false);
  epoch_ = 0;
  restamp_ = true;
  pusher_.Stop();
  posted_.clear();  // a later leadership posts the current errors again
  if (was_leading) MEMHA_LOG(kInfo, "reconcile", "not leading: pushes stopped");
}

void Reconciler::Poke() {
  restamp_ = true;
  loop_cv_.notify_all();
}

void Reconciler::Loop() {
  uint64_t seen = 0;
  auto last_pass = std::chrono::steady_clock::now() - options_.interval;
  std::unique_lock lock(loop_mu_);
  while (!stopping_) {
    lock.unlock();
    uint64_t gen = store_.WaitForChange(seen, options_.poll);
    lock.lock();
    if (stopping_) break;
    auto now = std::chrono::steady_clock::now();
    bool changed = gen > seen;
    if (!changed && !restamp_ && now - last_pass < options_.interval) continue;
    if (changed && !restamp_) {
      // Coalesce a burst (a rollout, a relist) into one pass.
      loop_cv_.wait_for(lock, options_.coalesce, [&] { return stopping_; });
      if (stopping_) break;
    }
    lock.unlock();
    seen = store_.Generation();
    ReconcileOnce();
    last_pass = std::chrono::steady_clock::now();
    lock.lock();
  }
}

void Reconciler::ReconcileOnce() {
  if (!store_.Synced()) return;  // nothing is computed, pushed or served before the first full list
  std::lock_guard pass(pass_mu_);
  restamp_ = false;
  bool leading = leading_.load();
  uint64_t epoch = leading ? epoch_.load() : 0;
  auto start = std::chrono::steady_clock::now();

  topology::Options topology_options = options_.topology;
  if (options_.refill_marks) topology_options.refill = options_.refill_marks();
  topology::ComputeResult result;
  std::vector<std::pair<topology::TopologyError, std::string>> fresh;  // new errors with the object's uid
  uint64_t read_mark = 0;
  store_.Read([&](const model::StoreView& view) {
    read_mark = view.ignored_pod_changes;
    result = topology::ComputeTopologies(view, topology_options, epoch, state_, start);
    for (const auto& e : result.errors) {
      if (logged_.count(e) > 0 && (!leading || posted_.count(e) > 0)) continue;
      std::string uid;
      if (e.kind == "Pod") {
        if (auto it = view.pods.find(e.object); it != view.pods.end()) uid = it->second.meta.uid;
      } else if (auto it = view.services.find(e.object); it != view.services.end()) {
        uid = it->second.meta.uid;
      }
      fresh.emplace_back(e, std::move(uid));
    }
  });

  uint64_t before = state_.version;
  state_ = std::move(result.state);
  store_.SetPoolServices(PoolServicesInUse(state_), read_mark);
  auto snapshot = std::make_shared<const topology::State>(state_);
  {
    std::lock_guard lock(current_mu_);
    current_ = snapshot;
    current_errors_ = result.errors.size();
  }

  // A pod annotated memha.io/pools without the sidecar container (opted out with memha.io/inject=false, or
  // created while the webhook was down under failurePolicy Ignore) has nothing listening for pushes: it is
  // logged once, counted, served on GET, and not pushed (it would fail on every resync for its lifetime).
  std::set<std::string> without;
  for (const auto& [pod, s] : state_.sidecars) {
    if (s.has_sidecar) continue;
    without.insert(pod);
    if (without_sidecar_.count(pod) == 0) {
      MEMHA_LOG(kWarn, "reconcile", "pod has memha.io/pools but no memha-sidecar container: not pushed pod=" << pod);
    }
  }
  without_sidecar_ = std::move(without);
  {
    std::lock_guard lock(current_mu_);
    current_without_sidecar_ = without_sidecar_.size();
  }

  std::set<topology::TopologyError> now_present(result.errors.begin(), result.errors.end());
  for (auto& [e, uid] : fresh) {
    if (logged_.insert(e).second) {
      MEMHA_LOG(kWarn, "reconcile", "configuration error kind=" << e.kind << " object=" << e.object
                                                                << " reason=" << topology::ToString(e.reason)
                                                                << " message=\"" << e.message << "\"");
      if (metrics_ != nullptr) metrics_->TopologyErrorRecorded(e.reason);
    }
    if (leading && posted_.insert(e).second && on_new_error_) on_new_error_(e, uid);
  }
  // Fixed errors are forgotten, so a recurrence is reported again.
  for (auto* seen : {&logged_, &posted_}) {
    for (auto it = seen->begin(); it != seen->end();) {
      it = now_present.count(*it) > 0 ? std::next(it) : seen->erase(it);
    }
  }
  if (metrics_ != nullptr) metrics_->SetCurrentTopologyErrors(result.errors);

  if (options_.on_pass) options_.on_pass(state_, leading);
  if (leading) {
    std::vector<push::PushTarget> targets;
    targets.reserve(state_.sidecars.size());
    for (const auto& [pod, s] : state_.sidecars) {
      if (s.has_sidecar) targets.push_back({pod, s.admin_address, s.topology});
    }
    store_.Read([&](const model::StoreView& view) {  // the pod's uid is bound into each signed push
      for (push::PushTarget& t : targets) {
        if (auto it = view.pods.find(t.pod); it != view.pods.end()) t.uid = it->second.meta.uid;
      }
    });
    pusher_.Replace(targets);
    if (!pusher_.Running()) pusher_.Start();
  }
  ++passes_;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (metrics_ != nullptr) metrics_->ReconcileDone(seconds);
  if (state_.version != before) {
    MEMHA_LOG(kInfo, "reconcile", "topology changed epoch=" << epoch << " version=" << state_.version
                                                            << " sidecars=" << state_.sidecars.size()
                                                            << " errors=" << result.errors.size()
                                                            << " seconds=" << seconds);
  }
}

std::optional<std::string> Reconciler::TopologyJson(const std::string& pod) const {
  std::shared_ptr<const topology::State> state;
  {
    std::lock_guard lock(current_mu_);
    state = current_;
  }
  auto it = state->sidecars.find(pod);
  if (it == state->sidecars.end()) return std::nullopt;
  return TopologyToJson(*it->second.topology);
}

size_t Reconciler::Sidecars() const {
  std::lock_guard lock(current_mu_);
  return current_->sidecars.size();
}

std::set<std::string> Reconciler::SidecarNamespaces() const {
  std::shared_ptr<const topology::State> state;
  {
    std::lock_guard lock(current_mu_);
    state = current_;
  }
  std::set<std::string> namespaces;
  for (const auto& [pod, s] : state->sidecars) {
    if (s.has_sidecar) namespaces.insert(pod.substr(0, pod.find('/')));
  }
  return namespaces;
}

size_t Reconciler::PodsWithoutSidecar() const {
  std::lock_guard lock(current_mu_);
  return current_without_sidecar_;
}

size_t Reconciler::CurrentErrors() const {
  std::lock_guard lock(current_mu_);
  return current_errors_;
}

}  // namespace memha::app
