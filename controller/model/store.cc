#include "controller/model/store.h"

#include <utility>

namespace memha::model {
namespace {

// Only a change of what the controller keeps counts: a pod's status churn (restart counts, other conditions)
// bumps its resourceVersion but must not cost a reconcile pass.
template <typename T>
bool SameContent(const T& a, const T& b) {
  return a.SameContent(b);
}

template <typename T>
bool ReplaceAll(std::map<std::string, T>* into, std::vector<T> objects) {
  std::map<std::string, T> next;
  for (T& o : objects) {
    std::string key = o.meta.Key();
    next.insert_or_assign(std::move(key), std::move(o));
  }
  bool changed = next.size() != into->size();
  if (!changed) {
    for (auto a = next.begin(), b = into->begin(); a != next.end(); ++a, ++b) {
      if (a->first != b->first || !SameContent(a->second, b->second)) {
        changed = true;
        break;
      }
    }
  }
  *into = std::move(next);
  return changed;
}

template <typename T>
bool Upsert(std::map<std::string, T>* into, T object) {
  std::string key = object.meta.Key();
  auto it = into->find(key);
  if (it != into->end() && SameContent(it->second, object)) {
    it->second.meta.resource_version = std::move(object.meta.resource_version);  // newest seen, no change
    return false;
  }
  into->insert_or_assign(std::move(key), std::move(object));
  return true;
}

// Kubernetes semantics: a Service with an empty selector selects nothing.
bool Selects(const StringMap& selector, const StringMap& labels) {
  if (selector.empty()) return false;
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

void Store::ReplacePods(std::vector<PodInfo> objects) {
  std::lock_guard lock(mu_);
  bool first = !pods_listed_;
  pods_listed_ = true;
  if (ReplaceAll(&pods_, std::move(objects)) || first) Changed();
}

void Store::ReplaceServices(std::vector<ServiceInfo> objects) {
  std::lock_guard lock(mu_);
  bool first = !services_listed_;
  services_listed_ = true;
  if (ReplaceAll(&services_, std::move(objects)) || first) Changed();
}

void Store::UpsertPod(PodInfo pod) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(pod.meta.Key());
  bool relevant = Relevant(pod) || (it != pods_.end() && Relevant(it->second));  // after or before
  if (Upsert(&pods_, std::move(pod))) PodChanged(relevant);
}

void Store::UpsertService(ServiceInfo service) {
  std::lock_guard lock(mu_);
  if (Upsert(&services_, std::move(service))) Changed();
}

void Store::ErasePod(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  bool relevant = Relevant(it->second);
  pods_.erase(it);
  PodChanged(relevant);
}

void Store::EraseService(const std::string& key) {
  std::lock_guard lock(mu_);
  if (services_.erase(key) > 0) Changed();
}

bool Store::Synced() const {
  std::lock_guard lock(mu_);
  return pods_listed_ && services_listed_;
}

uint64_t Store::Generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

size_t Store::PodCount() const {
  std::lock_guard lock(mu_);
  return pods_.size();
}

size_t Store::ServiceCount() const {
  std::lock_guard lock(mu_);
  return services_.size();
}

void Store::Read(const std::function<void(const StoreView&)>& fn) const {
  std::lock_guard lock(mu_);
  fn(StoreView{pods_, services_, ignored_pod_changes_});
}

void Store::SetPoolServices(std::set<std::string> services, uint64_t read_mark) {
  std::lock_guard lock(mu_);
  bool differs = !filtering_ || services != pool_services_;
  filtering_ = true;
  pool_services_ = std::move(services);
  // A change ignored after the pass's read was judged by the old set; under the new one it may matter.
  if (differs && ignored_pod_changes_ > read_mark) Changed();
}

uint64_t Store::IgnoredPodChanges() const {
  std::lock_guard lock(mu_);
  return ignored_pod_changes_;
}

bool Store::Relevant(const PodInfo& pod) const {
  if (!filtering_) return true;
  if (pod.meta.annotations.count(std::string(kPoolsAnnotation)) > 0) return true;
  const std::string prefix = pod.meta.ns + "/";
  for (auto it = pool_services_.lower_bound(prefix); it != pool_services_.end() && it->starts_with(prefix); ++it) {
    auto svc = services_.find(*it);
    if (svc != services_.end() && Selects(svc->second.selector, pod.meta.labels)) return true;
  }
  return false;
}

uint64_t Store::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return generation_ > seen; });
  return generation_;
}

void Store::Changed() {
  ++generation_;
  cv_.notify_all();
}

void Store::PodChanged(bool relevant) {
  if (relevant) {
    Changed();
  } else {
    ++ignored_pod_changes_;
  }
}

}  // namespace memha::model
