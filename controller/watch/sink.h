#pragma once
// Where a watcher puts what it reads: one implementation per kind, parsing API JSON into the model and
// writing the Store. The watcher itself knows nothing about Pods or Services.
#include <memory>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "controller/model/store.h"

namespace memha::watch {

class WatchSink {
 public:
  virtual ~WatchSink() = default;
  virtual void BeginList() = 0;                                  // a (re)list starts; forget what it collected
  virtual Status AddListItem(const nlohmann::json& object) = 0;  // error: this item is skipped
  virtual void CommitList() = 0;                                 // swap the cache at once (synthesizes deletes)
  virtual Status Upsert(const nlohmann::json& object) = 0;       // ADDED / MODIFIED
  virtual Status Erase(const nlohmann::json& object) = 0;        // DELETED
};

std::unique_ptr<WatchSink> NewPodSink(model::Store& store);
std::unique_ptr<WatchSink> NewServiceSink(model::Store& store);

}  // namespace memha::watch
