#pragma once
// An in-memory Lease API (GET/POST/PUT on coordination.k8s.io/v1 leases) with resourceVersion checks, shared
// by several electors; failures and conflicting writes can be injected.
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "controller/kube/api.h"

namespace memha::testing {

class FakeLeaseApi : public kube::KubeApi {
 public:
  Result<kube::ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body,
                                    std::string_view) override {
    std::function<void()> hook;
    {
      std::lock_guard lock(mu_);
      ++requests_[std::string(method)];
      if (fail_) return Status::Unavailable("injected transport failure");
      auto h = before_.find(std::string(method));
      if (h != before_.end()) {
        hook = std::move(h->second);
        before_.erase(h);
      }
    }
    if (hook) hook();  // e.g. another writer updates the lease between our GET and PUT
    std::lock_guard lock(mu_);
    const std::string collection = "/apis/coordination.k8s.io/v1/namespaces/";
    if (path.rfind(collection, 0) != 0) return Answer(404, "{}");
    std::string rest = path.substr(collection.size());  // ns/leases[/name]
    size_t slash = rest.find('/');
    std::string ns = rest.substr(0, slash);
    std::string tail = rest.substr(slash + 1);
    if (method == "POST" && tail == "leases") {
      nlohmann::json obj = nlohmann::json::parse(body);
      std::string key = ns + "/" + obj["metadata"]["name"].get<std::string>();
      if (leases_.count(key)) return Answer(409, R"({"reason":"AlreadyExists"})");
      obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
      leases_[key] = obj;
      return Answer(201, obj.dump());
    }
    std::string key = ns + "/" + tail.substr(std::string("leases/").size());
    auto it = leases_.find(key);
    if (method == "GET") return it == leases_.end() ? Answer(404, "{}") : Answer(200, it->second.dump());
    if (method == "PUT") {
      if (it == leases_.end()) return Answer(404, "{}");
      nlohmann::json obj = nlohmann::json::parse(body);
      if (obj["metadata"].value("resourceVersion", "") != it->second["metadata"]["resourceVersion"])
        return Answer(409, R"({"reason":"Conflict"})");
      obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
      it->second = obj;
      return Answer(200, obj.dump());
    }
    return Answer(405, "{}");
  }
  Result<kube::ApiResponse> Stream(const std::string&, const std::function<bool(std::string_view)>&) override {
    return Status::Unavailable("no streams here");
  }
  void Cancel() override {}

  void SetFailing(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
  }
  void BeforeNextPut(std::function<void()> hook) { BeforeNext("PUT", std::move(hook)); }
  void BeforeNext(const std::string& method, std::function<void()> hook) {
    std::lock_guard lock(mu_);
    before_[method] = std::move(hook);
  }
  nlohmann::json Lease(const std::string& key) {
    std::lock_guard lock(mu_);
    return leases_.count(key) ? leases_[key] : nlohmann::json();
  }
  // Writes the spec directly (another controller, or a stale object from a dead holder).
  void SetSpec(const std::string& key, const nlohmann::json& spec) {
    std::lock_guard lock(mu_);
    nlohmann::json& obj = leases_[key];
    size_t slash = key.find('/');
    obj["metadata"]["namespace"] = key.substr(0, slash);
    obj["metadata"]["name"] = key.substr(slash + 1);
    obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
    obj["spec"] = spec;
  }
  int Count(const std::string& method) {
    std::lock_guard lock(mu_);
    return requests_[method];
  }

 private:
  static kube::ApiResponse Answer(int status, std::string body) {
    kube::ApiResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  std::mutex mu_;
  std::map<std::string, nlohmann::json> leases_;
  std::map<std::string, int> requests_;
  uint64_t rv_ = 100;
  bool fail_ = false;
  std::map<std::string, std::function<void()>> before_;
};

}  // namespace memha::testing
