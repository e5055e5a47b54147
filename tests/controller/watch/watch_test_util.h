#pragma once
// JSON builders for watcher tests.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace memha::testing {

inline nlohmann::json PodObject(const std::string& ns, const std::string& name, const std::string& rv,
                                bool ready = true, const std::string& ip = "10.0.0.1") {
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"uid", "uid-" + name}, {"resourceVersion", rv},
                        {"labels", {{"app", "cache"}}}}},
          {"spec", {{"containers", {{{"name", "memcached"}, {"ports", {{{"name", "mc"}, {"containerPort", 11211}}}}}}}}},
          {"status", {{"phase", "Running"}, {"podIP", ip},
                      {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}}}};
}

inline std::string Event(const std::string& type, const nlohmann::json& object) {
  return nlohmann::json{{"type", type}, {"object", object}}.dump() + "\n";
}

inline std::string Bookmark(const std::string& rv) {
  return Event("BOOKMARK", {{"kind", "Pod"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}}});
}

inline std::string GoneEvent() {
  return Event("ERROR", {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
                         {"message", "too old resource version: 1 (20)"}, {"reason", "Expired"}, {"code", 410}});
}

inline std::string ListBody(const std::vector<nlohmann::json>& items, const std::string& rv,
                            const std::string& cont = "") {
  nlohmann::json list = {{"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}},
                         {"items", items}};
  if (!cont.empty()) list["metadata"]["continue"] = cont;
  return list.dump();
}

}  // namespace memha::testing
