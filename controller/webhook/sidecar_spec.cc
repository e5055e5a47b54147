#include "controller/webhook/sidecar_spec.h"

#include "controller/topology/annotations.h"

#include <string_view>

namespace memha::webhook {
namespace {

using nlohmann::json;

json HttpProbe(std::string_view path, int port, int period_s, int failure_threshold) {
  return json{{"httpGet", {{"path", path}, {"port", port}, {"scheme", "HTTP"}}},
              {"periodSeconds", period_s},
              {"timeoutSeconds", 1},
              {"successThreshold", 1},
              {"failureThreshold", failure_threshold}};
}

json Resources(const SidecarResources& r) {
  json requests = json::object();
  json limits = json::object();
  if (!r.cpu_request.empty()) requests["cpu"] = r.cpu_request;
  if (!r.memory_request.empty()) requests["memory"] = r.memory_request;
  if (!r.cpu_limit.empty()) limits["cpu"] = r.cpu_limit;
  if (!r.memory_limit.empty()) limits["memory"] = r.memory_limit;
  json out = json::object();
  if (!requests.empty()) out["requests"] = requests;
  if (!limits.empty()) out["limits"] = limits;
  return out;
}

}  // namespace

Status InjectConfig::Validate() const {
  if (image.empty()) return Status::InvalidArgument("sidecar image is empty");
  if (image_pull_policy != "Always" && image_pull_policy != "IfNotPresent" && image_pull_policy != "Never") {
    return Status::InvalidArgument("sidecar imagePullPolicy must be Always, IfNotPresent or Never");
  }
  if (controller_url.rfind("http://", 0) != 0 && controller_url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("controller URL must start with http:// or https://");
  }
  if (admin_port < 1 || admin_port > 65535) return Status::InvalidArgument("sidecar admin port out of range");
  if (health_port < 1 || health_port > 65535) return Status::InvalidArgument("sidecar health port out of range");
  if (health_port == admin_port) return Status::InvalidArgument("sidecar health and admin ports must differ");
  if (token_expiration_s < 600) return Status::InvalidArgument("sidecar token expiration must be >= 600 s");
  if (run_as_user <= 0) return Status::InvalidArgument("sidecar runAsUser must be a non-root uid");
  if (startup_timeout_s < 1) return Status::InvalidArgument("sidecar startup timeout must be >= 1 s");
  return Status::Ok();
}

json SidecarContainer(const InjectConfig& c, bool socket) {
  const std::string port = std::to_string(c.admin_port);
  json container = {
      {"name", kSidecarContainerName},
      {"image", c.image},
      {"imagePullPolicy", c.image_pull_policy},
      // A native sidecar: started before the application containers, kept running, stopped after them.
      {"restartPolicy", "Always"},
      {"command", {"memha-sidecar"}},
      {"args",
       {"--admin-address=0.0.0.0", "--admin-port=" + port, "--health-port=" + std::to_string(c.health_port),
        std::string("--controller-token-file=") + kTokenMountPath + "/" + kTokenFileName,
        std::string("--state-file=") + kStateMountPath + "/topology.json", "--controller-url=" + c.controller_url,
        "--pod=$(MEMHA_POD_NAMESPACE)/$(MEMHA_POD_NAME)", "--log-level=" + c.log_level}},
      {"env",
       {{{"name", "MEMHA_POD_NAMESPACE"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}},
        {{"name", "MEMHA_POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}}},
      {"ports",
       {{{"name", "memha-admin"}, {"containerPort", c.admin_port}, {"protocol", "TCP"}},
        {{"name", "memha-health"}, {"containerPort", c.health_port}, {"protocol", "TCP"}}}},
      // On the health port (its address is the admin address, 0.0.0.0, so the kubelet reaches it on the pod IP).
      // /readyz answers 200 once the sidecar has a topology: the application starts only when its cache works.
      // /healthz fails once the data-plane event loop has not turned for 5 s.
      {"startupProbe", HttpProbe("/readyz", c.health_port, 1, c.startup_timeout_s)},
      {"readinessProbe", HttpProbe("/readyz", c.health_port, 5, 3)},
      {"livenessProbe", HttpProbe("/healthz", c.health_port, 10, 3)},
      {"resources", Resources(c.resources)},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", c.run_as_user},
        {"runAsGroup", c.run_as_user},
        {"allowPrivilegeEscalation", false},
        {"readOnlyRootFilesystem", true},
        {"capabilities", {{"drop", {"ALL"}}}},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"volumeMounts",
       {{{"name", kTokenVolumeName}, {"mountPath", kTokenMountPath}, {"readOnly", true}},
        {{"name", kStateVolumeName}, {"mountPath", kStateMountPath}}}},
      {"terminationMessagePolicy", "FallbackToLogsOnError"},
  };
  if (socket) {
    container["volumeMounts"].push_back(
        {{"name", kSocketVolumeName}, {"mountPath", std::string(topology::kSocketDir)}});
  }
  if (!c.push_public_keys.empty()) {
    std::string keys;
    for (const std::string& k : c.push_public_keys) keys += (keys.empty() ? "" : ",") + k;
    container["args"].push_back("--push-public-key=" + keys);
    container["args"].push_back("--pod-uid=$(MEMHA_POD_UID)");
    container["env"].push_back(
        {{"name", "MEMHA_POD_UID"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.uid"}}}}}});
  }
  return container;
}

json SidecarVolumes(const InjectConfig& c, bool socket) {
  json volumes = json::array({
      // The pod's own identity for the controller (GET /v1/topology): bound to this pod, for audience memha only
      // (useless against the API server), short-lived; the kubelet rewrites the file before it expires.
      {{"name", kTokenVolumeName},
       {"projected",
        {{"sources",
          {{{"serviceAccountToken",
             {{"audience", kTokenAudience}, {"expirationSeconds", c.token_expiration_s}, {"path", kTokenFileName}}}}}}}}},
      // The last good topology survives a sidecar restart (not a pod restart: that asks the controller again).
      {{"name", kStateVolumeName}, {"emptyDir", {{"sizeLimit", "16Mi"}}}},
  });
  // The pools' unix sockets (memha.io/socket): the kubelet creates an emptyDir world-writable, so the sidecar (its
  // own uid) can create sockets there and an application container of any uid can connect; only this pod's
  // containers mount it.
  if (socket) volumes.push_back({{"name", kSocketVolumeName}, {"emptyDir", {{"sizeLimit", "1Mi"}}}});
  return volumes;
}

}  // namespace memha::webhook
