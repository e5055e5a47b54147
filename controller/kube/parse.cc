#include "controller/kube/parse.h"

namespace memha::kube {
namespace {

using nlohmann::json;

const json& Child(const json& o, const char* key) {
  static const json kNull;
  if (!o.is_object()) return kNull;
  auto it = o.find(key);
  return it == o.end() ? kNull : *it;
}

std::string Str(const json& o, const char* key) {
  const json& v = Child(o, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

int Int(const json& v) {
  if (v.is_number_integer()) return v.get<int>();
  return 0;
}

model::StringMap StringMap(const json& o) {
  model::StringMap out;
  if (!o.is_object()) return out;
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (it->is_string()) out.emplace(it.key(), it->get<std::string>());
  }
  return out;
}

}  // namespace

Result<model::ObjectMeta> ParseMeta(const json& object) {
  if (!object.is_object()) return Status::InvalidArgument("object is not a JSON object");
  const json& m = Child(object, "metadata");
  model::ObjectMeta meta;
  meta.name = Str(m, "name");
  if (meta.name.empty()) return Status::InvalidArgument("object has no metadata.name");
  meta.ns = Str(m, "namespace");
  meta.uid = Str(m, "uid");
  meta.resource_version = Str(m, "resourceVersion");
  meta.labels = StringMap(Child(m, "labels"));
  meta.annotations = StringMap(Child(m, "annotations"));
  const json& deletion = Child(m, "deletionTimestamp");
  meta.deleting = !deletion.is_null();
  return meta;
}

Result<model::PodInfo> ParsePod(const json& object) {
  auto meta = ParseMeta(object);
  if (!meta.ok()) return meta.status();
  model::PodInfo pod;
  pod.meta = std::move(meta).value();
  const json& status = Child(object, "status");
  pod.pod_ip = Str(status, "podIP");
  pod.phase = Str(status, "phase");
  const json& conditions = Child(status, "conditions");
  if (conditions.is_array()) {
    for (const json& c : conditions) {
      if (Str(c, "type") == "Ready") pod.ready = Str(c, "status") == "True";
    }
  }
  const json& spec = Child(object, "spec");
  for (const char* list : {"containers", "initContainers"}) {
    const json& entries = Child(spec, list);
    if (!entries.is_array()) continue;
    for (const json& c : entries) {
      if (Str(c, "name") == model::kSidecarContainer) pod.has_sidecar = true;
    }
  }
  if (const json& volumes = Child(spec, "volumes"); volumes.is_array()) {
    for (const json& v : volumes) {
      if (Str(v, "name") == model::kSocketVolume) pod.has_socket_volume = true;
    }
  }
  const json& containers = Child(spec, "containers");
  if (containers.is_array()) {
    for (const json& c : containers) {
      const json& ports = Child(c, "ports");
      if (!ports.is_array()) continue;
      for (const json& p : ports) {
        int port = Int(Child(p, "containerPort"));
        if (port <= 0) continue;
        std::string protocol = Str(p, "protocol");
        if (!protocol.empty() && protocol != "TCP") continue;  // memcached is TCP
        pod.ports.push_back(model::ContainerPort{Str(p, "name"), port});
      }
    }
  }
  return pod;
}

Result<model::ServiceInfo> ParseService(const json& object) {
  auto meta = ParseMeta(object);
  if (!meta.ok()) return meta.status();
  model::ServiceInfo svc;
  svc.meta = std::move(meta).value();
  const json& spec = Child(object, "spec");
  svc.selector = StringMap(Child(spec, "selector"));
  const json& ports = Child(spec, "ports");
  if (ports.is_array()) {
    for (const json& p : ports) {
      std::string protocol = Str(p, "protocol");
      if (!protocol.empty() && protocol != "TCP") continue;
      model::ServicePort sp;
      sp.name = Str(p, "name");
      sp.port = Int(Child(p, "port"));
      const json& target = Child(p, "targetPort");
      if (target.is_number_integer()) {
        sp.target_port = target.get<int>();
      } else if (target.is_string()) {
        // An IntOrString may also arrive as a numeric string.
        const std::string& t = target.get_ref<const std::string&>();
        bool numeric = !t.empty() && t.size() <= 5 && t.find_first_not_of("0123456789") == std::string::npos;
        if (numeric) sp.target_port = std::stoi(t);
        else sp.target_port_name = t;
      } else {
        sp.target_port = sp.port;  // absent: defaults to port
      }
      svc.ports.push_back(std::move(sp));
    }
  }
  return svc;
}

Result<ListPage> ParseListPage(const std::string& body) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return Status::InvalidArgument("list response is not a JSON object");
  ListPage page;
  const json& m = Child(doc, "metadata");
  page.resource_version = Str(m, "resourceVersion");
  page.continue_token = Str(m, "continue");
  auto items = doc.find("items");
  if (items != doc.end() && items->is_array()) page.items = std::move(*items);
  else if (items != doc.end() && !items->is_null()) return Status::InvalidArgument("list items is not an array");
  return page;
}

ApiStatus ParseApiStatus(const json& object) {
  ApiStatus s;
  s.code = Int(Child(object, "code"));
  s.reason = Str(object, "reason");
  s.message = Str(object, "message");
  return s;
}

}  // namespace memha::kube
