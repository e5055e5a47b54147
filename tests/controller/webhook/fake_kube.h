#pragma once
// A hand-written in-memory Kubernetes API for webhook tests: objects by path, resourceVersions, 404/409 like the
// real server, JSON patch with a failing `test` answered 422. `intercept` can answer a call first (faults, races).
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/kube/api.h"

namespace memha::webhook::testing {

struct Call {
  std::string method;
  std::string path;
  std::string body;
  std::string content_type;
};

class FakeKube : public kube::KubeApi {
 public:
  std::function<std::optional<kube::ApiResponse>(const Call&)> intercept;

  void Put(const std::string& path, nlohmann::json object) {
    std::lock_guard lock(mu_);
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[path] = std::move(object);
  }
  std::optional<nlohmann::json> Get(const std::string& path) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(path);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  size_t Writes() {
    size_t n = 0;
    for (const auto& c : calls()) n += c.method != "GET";
    return n;
  }

  Result<kube::ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body,
                                    std::string_view content_type) override {
    Call call{std::string(method), path, body, std::string(content_type)};
    {
      std::lock_guard lock(mu_);
      calls_.push_back(call);
    }
    if (intercept) {
      if (auto r = intercept(call)) return *r;
    }
    std::lock_guard lock(mu_);
    if (method == "GET") {
      auto it = objects_.find(path);
      if (it == objects_.end()) return Answer(404, "not found");
      return kube::ApiResponse{200, it->second.dump(), {}};
    }
    if (method == "POST") {
      auto object = nlohmann::json::parse(body);
      const std::string target = path + "/" + object["metadata"]["name"].get<std::string>();
      if (objects_.count(target) != 0) return Answer(409, "already exists");
      object["metadata"]["resourceVersion"] = std::to_string(++rv_);
      objects_[target] = object;
      return kube::ApiResponse{201, object.dump(), {}};
    }
    auto it = objects_.find(path);
    if (it == objects_.end()) return Answer(404, "not found");
    if (method == "PUT") {
      auto object = nlohmann::json::parse(body);
      if (object["metadata"].value("resourceVersion", "") != it->second["metadata"]["resourceVersion"]) {
        return Answer(409, "the object has been modified");
      }
      object["metadata"]["resourceVersion"] = std::to_string(++rv_);
      it->second = object;
      return kube::ApiResponse{200, object.dump(), {}};
    }
    if (method == "PATCH" && content_type == "application/json-patch+json") {
      try {
        auto patched = it->second.patch(nlohmann::json::parse(body));
        patched["metadata"]["resourceVersion"] = std::to_string(++rv_);
        it->second = patched;
        return kube::ApiResponse{200, patched.dump(), {}};
      } catch (const std::exception& e) {
        return Answer(422, e.what());
      }
    }
    return Answer(405, "method not allowed");
  }
  Result<kube::ApiResponse> Stream(const std::string&, const std::function<bool(std::string_view)>&) override {
    return Status::Unavailable("no streams in this fake");
  }
  void Cancel() override {}

  static kube::ApiResponse Answer(int status, const std::string& message) {
    return kube::ApiResponse{status, nlohmann::json{{"kind", "Status"}, {"code", status}, {"message", message}}.dump(), {}};
  }

 private:
  std::mutex mu_;
  std::map<std::string, nlohmann::json> objects_;
  std::vector<Call> calls_;
  int rv_ = 100;
};

}  // namespace memha::webhook::testing
