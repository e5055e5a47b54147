#include "controller/webhook/admission.h"

#include <exception>
#include <optional>
#include <utility>
#include <vector>

#include "controller/webhook/base64.h"
#include "controller/topology/annotations.h"

namespace memha::webhook {
namespace {

using nlohmann::json;

constexpr const char* kApiVersion = "admission.k8s.io/v1";

std::string EscapePointer(std::string_view key) {  // RFC 6901
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

const json* Member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringAt(const json& object, const char* key) {
  const json* v = Member(object, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// A string-valued field of metadata.labels / metadata.annotations; `found` tells absent from empty.
std::string MetaString(const json& pod, const char* map, const char* key, bool* found) {
  *found = false;
  const json* meta = Member(pod, "metadata");
  const json* m = meta != nullptr ? Member(*meta, map) : nullptr;
  const json* v = m != nullptr ? Member(*m, key) : nullptr;
  if (v == nullptr || !v->is_string()) return {};
  *found = true;
  return v->get<std::string>();
}

bool HasContainerNamed(const json& spec, const char* list, std::string_view name) {
  const json* containers = Member(spec, list);
  if (containers == nullptr || !containers->is_array()) return false;
  for (const json& c : *containers) {
    if (StringAt(c, "name") == name) return true;
  }
  return false;
}

bool HasVolumeNamed(const json& spec, std::string_view name) { return HasContainerNamed(spec, "volumes", name); }

// The first container port that one of the sidecar's listeners would take, described for the warning.
std::optional<std::string> PortClash(const json& spec, const InjectConfig& config,
                                     const std::vector<topology::PoolRef>& pools) {
  std::vector<std::pair<int, std::string>> taken = {{config.admin_port, "admin"}, {config.health_port, "health"}};
  for (const topology::PoolRef& p : pools) taken.emplace_back(p.local_port, "pool " + p.service);
  for (const char* list : {"initContainers", "containers"}) {
    const json* containers = Member(spec, list);
    if (containers == nullptr || !containers->is_array()) continue;
    for (const json& c : *containers) {
      const json* ports = Member(c, "ports");
      if (ports == nullptr || !ports->is_array()) continue;
      for (const json& port : *ports) {
        const json* number = Member(port, "containerPort");
        if (number == nullptr || !number->is_number_integer()) continue;
        for (const auto& [sidecar_port, what] : taken) {
          if (number->get<int64_t>() != sidecar_port) continue;
          const json* name = Member(c, "name");
          return "container " + (name != nullptr && name->is_string() ? name->get<std::string>() : std::string("?")) +
                 " uses port " + std::to_string(sidecar_port) + ", which the sidecar listens on (" + what + ")";
        }
      }
    }
  }
  return std::nullopt;
}

AdmissionResult BadRequest(std::string message) {
  AdmissionResult r;
  r.http_status = 400;
  r.decision = Decision::kBadRequest;
  r.reason = std::move(message);
  r.body = json{{"error", r.reason}}.dump();
  return r;
}

// Fills the response body: allowed, optional patch, optional warning.
void Respond(AdmissionResult* r, const json* patch, const std::string& warning) {
  json response = {{"uid", r->uid}, {"allowed", true}};
  if (patch != nullptr) {
    response["patchType"] = "JSONPatch";
    response["patch"] = Base64Encode(patch->dump());
  }
  if (!warning.empty()) response["warnings"] = json::array({"memha: " + warning});
  r->body = json{{"apiVersion", r->api_version}, {"kind", "AdmissionReview"}, {"response", response}}.dump();
}

void Decide(AdmissionResult* r, Decision decision, const std::string& warning) {
  r->decision = decision;
  r->reason = warning;
  Respond(r, nullptr, warning);
}

void ReviewPodObject(AdmissionResult* r, const json& pod, const InjectConfig& config) {
  const json* spec = Member(pod, "spec");
  if (!pod.is_object() || spec == nullptr || !spec->is_object()) {
    return Decide(r, Decision::kBadObject, "request.object is not a pod (no spec); sidecar not injected");
  }
  bool found = false;
  const std::string inject = MetaString(pod, "labels", kInjectLabel, &found);
  if (found && inject == "false") return Decide(r, Decision::kOptedOut, "");
  if (found && inject != "true") {
    return Decide(r, Decision::kBadInjectLabel,
                  "label memha.io/inject must be \"true\" or \"false\", not \"" + inject + "\"; sidecar not injected");
  }
  if (HasContainerNamed(*spec, "initContainers", kSidecarContainerName) ||
      HasContainerNamed(*spec, "containers", kSidecarContainerName)) {
    return Decide(r, Decision::kAlreadyInjected, "");
  }
  const std::string pools = MetaString(pod, "annotations", kPoolsAnnotation, &found);
  if (!found) {
    return Decide(r, Decision::kNoPools,
                  "pod selected for injection has no memha.io/pools annotation; sidecar not injected");
  }
  // The controller's own parser, with the same ports: a pod injected here is one the controller serves.
  auto parsed = topology::ParsePoolsAnnotation(pools, r->pod_namespace,
                                               {.default_port = topology::kDefaultLocalPort,
                                                .admin_port = static_cast<uint16_t>(config.admin_port)});
  if (!parsed.ok()) {
    return Decide(r, Decision::kBadPools,
                  std::string(kPoolsAnnotation) + ": " + parsed.status().message() + "; sidecar not injected");
  }
  bool socket = false;
  if (const std::string text = MetaString(pod, "annotations", topology::kSocketAnnotation.data(), &found);
      found) {
    auto on = topology::ParseSocketAnnotation(text);
    if (!on.ok()) {
      return Decide(r, Decision::kBadSocket,
                    std::string(topology::kSocketAnnotation) + ": " + on.status().message() + "; sidecar not injected");
    }
    socket = on.value();
  }
  if (const json* host = Member(*spec, "hostNetwork"); host != nullptr && host->is_boolean() && host->get<bool>()) {
    return Decide(r, Decision::kUnsupportedPod,
                  "hostNetwork pods are not injected (the sidecar would listen on the node's loopback)");
  }
  for (const char* volume : {kTokenVolumeName, kStateVolumeName, kSocketVolumeName}) {
    if (HasVolumeNamed(*spec, volume)) {
      return Decide(r, Decision::kUnsupportedPod,
                    std::string("the pod already has a volume named ") + volume + "; sidecar not injected");
    }
  }
  // The pod's containers share one network namespace with the sidecar: a port the sidecar listens on (admin,
  // health, a pool's local port) that a container also declares would fail one of them at bind time.
  if (auto clash = PortClash(*spec, config, parsed.value())) {
    return Decide(r, Decision::kUnsupportedPod, *clash + "; sidecar not injected");
  }
  r->decision = Decision::kInjected;
  r->reason = "";
  const json patch = InjectionPatch(pod, config, socket);
  Respond(r, &patch, "");
}

}  // namespace

std::string_view DecisionName(Decision decision) {
  switch (decision) {
    case Decision::kInjected: return "injected";
    case Decision::kOptedOut: return "opted_out";
    case Decision::kAlreadyInjected: return "already_injected";
    case Decision::kNotCreate: return "not_create";
    case Decision::kNoPools: return "no_pools";
    case Decision::kBadPools: return "bad_pools";
    case Decision::kBadInjectLabel: return "bad_inject_label";
    case Decision::kBadSocket: return "bad_socket";
    case Decision::kUnsupportedPod: return "unsupported_pod";
    case Decision::kNotPod: return "not_pod";
    case Decision::kBadObject: return "bad_object";
    case Decision::kBadRequest: return "bad_request";
  }
  return "unknown";
}

json InjectionPatch(const json& pod, const InjectConfig& config, bool socket) {
  json patch = json::array();
  const json& spec = pod.at("spec");
  const json* init = Member(spec, "initContainers");
  // First, so that other init containers (and then the application) already have a working cache.
  if (init == nullptr || !init->is_array() || init->empty()) {
    patch.push_back({{"op", "add"},
                     {"path", "/spec/initContainers"},
                     {"value", json::array({SidecarContainer(config, socket)})}});
  } else {
    patch.push_back({{"op", "add"}, {"path", "/spec/initContainers/0"}, {"value", SidecarContainer(config, socket)}});
  }
  if (socket) {
    // Every application container sees the sockets at the same path, and is told where (MEMHA_SOCKET_DIR).
    const json* containers = Member(spec, "containers");
    const json mount = {{"name", kSocketVolumeName}, {"mountPath", std::string(topology::kSocketDir)}};
    const json env = {{"name", kSocketDirEnv}, {"value", std::string(topology::kSocketDir)}};
    for (size_t i = 0; containers != nullptr && containers->is_array() && i < containers->size(); ++i) {
      const json& c = (*containers)[i];
      if (!c.is_object()) continue;
      const std::string at = "/spec/containers/" + std::to_string(i);
      for (const auto& [field, item] : {std::pair{"volumeMounts", &mount}, std::pair{"env", &env}}) {
        const json* list = Member(c, field);
        if (list == nullptr || !list->is_array()) {
          patch.push_back({{"op", "add"}, {"path", at + "/" + field}, {"value", json::array({*item})}});
        } else {
          patch.push_back({{"op", "add"}, {"path", at + "/" + field + "/-"}, {"value", *item}});
        }
      }
    }
  }
  const json* volumes = Member(spec, "volumes");
  if (volumes == nullptr || !volumes->is_array()) {
    patch.push_back({{"op", "add"}, {"path", "/spec/volumes"}, {"value", SidecarVolumes(config, socket)}});
  } else {
    for (const json& v : SidecarVolumes(config, socket)) {
      patch.push_back({{"op", "add"}, {"path", "/spec/volumes/-"}, {"value", v}});
    }
  }
  // The projected token needs the pod's ServiceAccount named: the ServiceAccount admission plugin (before any
  // webhook) sets "default"; where it is off, the API server would refuse the injected pod, so do what it does.
  auto named = [&spec](const char* field) {
    const json* v = Member(spec, field);
    return v != nullptr && v->is_string() && !v->get<std::string>().empty();
  };
  if (!named("serviceAccountName") && !named("serviceAccount")) {
    patch.push_back({{"op", "add"}, {"path", "/spec/serviceAccountName"}, {"value", "default"}});
  }
  const json* meta = Member(pod, "metadata");
  const json* labels = meta != nullptr ? Member(*meta, "labels") : nullptr;
  if (meta == nullptr || !meta->is_object()) {
    patch.push_back({{"op", "add"}, {"path", "/metadata"}, {"value", {{"labels", {{kInjectedLabel, "injected"}}}}}});
  } else if (labels == nullptr || !labels->is_object()) {
    patch.push_back({{"op", "add"}, {"path", "/metadata/labels"}, {"value", {{kInjectedLabel, "injected"}}}});
  } else {
    patch.push_back(
        {{"op", "add"}, {"path", "/metadata/labels/" + EscapePointer(kInjectedLabel)}, {"value", "injected"}});
  }
  return patch;
}

AdmissionResult ReviewPod(std::string_view body, const InjectConfig& config) {
  json review;
  try {
    review = json::parse(body);
  } catch (const std::exception& e) {
    return BadRequest(std::string("invalid JSON: ") + e.what());
  }
  if (!review.is_object()) return BadRequest("the body is not a JSON object");
  if (StringAt(review, "kind") != "AdmissionReview") return BadRequest("kind is not AdmissionReview");
  if (StringAt(review, "apiVersion") != kApiVersion) {
    return BadRequest("apiVersion \"" + StringAt(review, "apiVersion") + "\" is not supported; use " + kApiVersion);
  }
  const json* request = Member(review, "request");
  if (request == nullptr || !request->is_object()) return BadRequest("AdmissionReview has no request");
  AdmissionResult r;
  r.uid = StringAt(*request, "uid");
  if (r.uid.empty()) return BadRequest("AdmissionReview request has no uid");
  r.api_version = kApiVersion;
  r.pod_namespace = StringAt(*request, "namespace");
  r.pod_name = StringAt(*request, "name");
  if (const json* dry = Member(*request, "dryRun"); dry != nullptr && dry->is_boolean()) r.dry_run = dry->get<bool>();

  const json* kind = Member(*request, "kind");
  const bool is_pod = kind != nullptr && StringAt(*kind, "group").empty() && StringAt(*kind, "kind") == "Pod";
  if (!is_pod) {
    const std::string what = kind != nullptr ? StringAt(*kind, "kind") : std::string();
    Decide(&r, Decision::kNotPod,
           "the webhook got a " + (what.empty() ? std::string("request without kind") : what) +
               ", not a Pod (check the webhook rules); unchanged");
    return r;
  }
  if (StringAt(*request, "operation") != "CREATE" || !StringAt(*request, "subResource").empty()) {
    Decide(&r, Decision::kNotCreate, "");
    return r;
  }
  const json* object = Member(*request, "object");
  if (object == nullptr || !object->is_object()) {
    Decide(&r, Decision::kBadObject, "request.object is missing; sidecar not injected");
    return r;
  }
  if (r.pod_namespace.empty()) {
    if (const json* meta = Member(*object, "metadata")) r.pod_namespace = StringAt(*meta, "namespace");
  }
  if (r.pod_name.empty()) {
    if (const json* meta = Member(*object, "metadata")) r.pod_name = StringAt(*meta, "name");
  }
  if (const json* meta = Member(*object, "metadata")) {
    if (const json* owners = Member(*meta, "ownerReferences"); owners != nullptr && owners->is_array()) {
      for (const json& o : *owners) {
        if (!o.is_object() || !o.value("controller", false)) continue;
        r.owner_kind = StringAt(o, "kind");
        r.owner_name = StringAt(o, "name");
        r.owner_api_version = StringAt(o, "apiVersion");
        break;
      }
    }
  }
  ReviewPodObject(&r, *object, config);
  return r;
}

AdmissionResult AllowUnchanged(const AdmissionResult& result, Decision decision, const std::string& warning) {
  AdmissionResult r = result;
  r.http_status = 200;
  Decide(&r, decision, warning);
  return r;
}

}  // namespace memha::webhook
