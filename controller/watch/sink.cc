#include "controller/watch/sink.h"

#include <vector>

#include "controller/kube/parse.h"

namespace memha::watch {
namespace {

// The per-kind parts: parse and the Store's methods for that kind.
struct PodKind {
  using Info = model::PodInfo;
  static Result<Info> Parse(const nlohmann::json& o) { return kube::ParsePod(o); }
  static void Replace(model::Store& s, std::vector<Info> v) { s.ReplacePods(std::move(v)); }
  static void Upsert(model::Store& s, Info i) { s.UpsertPod(std::move(i)); }
  static void Erase(model::Store& s, const std::string& key) { s.ErasePod(key); }
};

struct ServiceKind {
  using Info = model::ServiceInfo;
  static Result<Info> Parse(const nlohmann::json& o) { return kube::ParseService(o); }
  static void Replace(model::Store& s, std::vector<Info> v) { s.ReplaceServices(std::move(v)); }
  static void Upsert(model::Store& s, Info i) { s.UpsertService(std::move(i)); }
  static void Erase(model::Store& s, const std::string& key) { s.EraseService(key); }
};

template <typename K>
class StoreSink final : public WatchSink {
 public:
  explicit StoreSink(model::Store& store) : store_(store) {}
  void BeginList() override { pending_.clear(); }
  Status AddListItem(const nlohmann::json& object) override {
    auto info = K::Parse(object);
    if (!info.ok()) return info.status();
    pending_.push_back(std::move(info).value());
    return Status::Ok();
  }
  void CommitList() override {
    K::Replace(store_, std::move(pending_));
    pending_ = {};
  }
  Status Upsert(const nlohmann::json& object) override {
    auto info = K::Parse(object);
    if (!info.ok()) return info.status();
    K::Upsert(store_, std::move(info).value());
    return Status::Ok();
  }
  Status Erase(const nlohmann::json& object) override {
    auto meta = kube::ParseMeta(object);
    if (!meta.ok()) return meta.status();
    K::Erase(store_, meta.value().Key());
    return Status::Ok();
  }

 private:
  model::Store& store_;
  std::vector<typename K::Info> pending_;
};

}  // namespace

std::unique_ptr<WatchSink> NewPodSink(model::Store& store) { return std::make_unique<StoreSink<PodKind>>(store); }
std::unique_ptr<WatchSink> NewServiceSink(model::Store& store) {
  return std::make_unique<StoreSink<ServiceKind>>(store);
}

}  // namespace memha::watch
