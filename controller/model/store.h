#pragma once
// The controller's cache of Pods and Services (a reflector store): filled by the watchers, read by reconcile.
// Thread-safe. "Synced" once every kind has had its first full list; nothing is pushed before that.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "controller/model/objects.h"

namespace memha::model {

enum class Kind { kPod, kService };

struct StoreView {
  const std::map<std::string, PodInfo>& pods;          // by "ns/name"
  const std::map<std::string, ServiceInfo>& services;  // by "ns/name"
  uint64_t ignored_pod_changes = 0;                    // IgnoredPodChanges() at the time of the read
};

class Store {
 public:
  // A full list (first list or relist after 410): swaps the kind's content at once. Objects missing from
  // `objects` are deleted (the synthesized deletes of a relist). Marks the kind listed.
  void ReplacePods(std::vector<PodInfo> objects);
  void ReplaceServices(std::vector<ServiceInfo> objects);
  void UpsertPod(PodInfo pod);
  void UpsertService(ServiceInfo service);
  void ErasePod(const std::string& key);
  void EraseService(const std::string& key);

  bool Synced() const;
  uint64_t Generation() const;  // grows with every change that altered content
  size_t PodCount() const;
  size_t ServiceCount() const;

  // Consistent read: `fn` runs under the store's lock; do not keep references past it.
  void Read(const std::function<void(const StoreView&)>& fn) const;

  // Relevance filter (docs/CONTROLLER.md "What costs a reconcile pass"). Once the reconciler has named the pool
  // Services in use, a pod change counts (grows Generation) only if the pod, before or after, carries
  // memha.io/pools or is selected by one of those Services; any other pod change is stored but costs no pass.
  // `read_mark` is StoreView::ignored_pod_changes of the read the pools were computed from: if the set differs
  // from the previous one and a change was ignored since that read (judged by the old set), Generation grows so
  // the reconciler looks again. Until the first call every change counts.
  void SetPoolServices(std::set<std::string> services, uint64_t read_mark);
  uint64_t IgnoredPodChanges() const;

  // Blocks until Generation() > seen or the deadline passes; returns the current generation.
  uint64_t WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const;

 private:
  void Changed();  // lock held
  bool Relevant(const PodInfo& pod) const;  // lock held
  void PodChanged(bool relevant);                    // lock held
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, PodInfo> pods_;
  std::map<std::string, ServiceInfo> services_;
  bool pods_listed_ = false;
  bool services_listed_ = false;
  uint64_t generation_ = 0;
  bool filtering_ = false;            // SetPoolServices was called
  std::set<std::string> pool_services_;
  uint64_t ignored_pod_changes_ = 0;
};

}  // namespace memha::model
