#pragma once
// Kubernetes API JSON -> the controller's model (only the fields it keeps). Pure functions, no exceptions.
//
//   auto pod = kube::ParsePod(json);   // Result<model::PodInfo>; error when metadata.name is missing
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "controller/model/objects.h"

namespace memha::kube {

Result<model::ObjectMeta> ParseMeta(const nlohmann::json& object);
Result<model::PodInfo> ParsePod(const nlohmann::json& object);
Result<model::ServiceInfo> ParseService(const nlohmann::json& object);

// The envelope of a list response: items stay JSON (parsed per kind by the caller).
struct ListPage {
  std::string resource_version;  // metadata.resourceVersion of the list
  std::string continue_token;    // metadata.continue ("" = last page)
  nlohmann::json items = nlohmann::json::array();
};
Result<ListPage> ParseListPage(const std::string& body);

// A Status object (error answers, in-stream ERROR events): code and message.
struct ApiStatus {
  int code = 0;
  std::string reason;
  std::string message;
};
ApiStatus ParseApiStatus(const nlohmann::json& object);

}  // namespace memha::kube
