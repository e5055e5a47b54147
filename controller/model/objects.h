#pragma once
// What the controller keeps of Kubernetes objects: only the fields it needs (issue 5: "only the fields the
// controller needs are kept in memory"). Filled from API JSON by controller/model/parse.*.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace memha::model {

using StringMap = std::map<std::string, std::string>;

// The application pod's annotation naming its pools (parsed by controller/topology/annotations.*). The store
// only needs to know whether a pod carries it.
inline constexpr std::string_view kPoolsAnnotation = "memha.io/pools";
// The container the webhook injects (an initContainers entry: a native sidecar). A pod is pushed only if it has
// a container or initContainer of this name; one added by hand must use the same name.
inline constexpr std::string_view kSidecarContainer = "memha-sidecar";
inline constexpr std::string_view kSocketVolume = "memha-sockets";  // the webhook's, for memha.io/socket

struct ObjectMeta {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  StringMap labels;
  StringMap annotations;
  bool deleting = false;  // metadata.deletionTimestamp is set
  std::string Key() const { return ns + "/" + name; }
  // Same content as far as the controller is concerned: everything but resourceVersion.
  bool SameContent(const ObjectMeta& o) const {
    return ns == o.ns && name == o.name && uid == o.uid && labels == o.labels && annotations == o.annotations &&
           deleting == o.deleting;
  }
};

struct ContainerPort {
  std::string name;
  int port = 0;
  bool operator==(const ContainerPort&) const = default;
};

struct PodInfo {
  ObjectMeta meta;
  std::string pod_ip;
  std::string phase;      // Pending | Running | Succeeded | Failed | Unknown
  bool ready = false;     // condition Ready == True
  std::vector<ContainerPort> ports;  // all containers' declared ports (for named targetPorts)
  bool has_sidecar = false;          // a container or initContainer named kSidecarContainer
  bool has_socket_volume = false;    // a volume named kSocketVolume (memha.io/socket was on at injection)
  bool SameContent(const PodInfo& o) const {
    return meta.SameContent(o.meta) && pod_ip == o.pod_ip && phase == o.phase && ready == o.ready &&
           ports == o.ports && has_sidecar == o.has_sidecar && has_socket_volume == o.has_socket_volume;
  }
};

struct ServicePort {
  std::string name;
  int port = 0;
  int target_port = 0;             // numeric targetPort (0 when named or absent)
  std::string target_port_name;    // named targetPort, resolved against the pod's container ports
  bool operator==(const ServicePort&) const = default;
};

struct ServiceInfo {
  ObjectMeta meta;
  StringMap selector;              // empty selector: no pods (Kubernetes semantics for Endpoints)
  std::vector<ServicePort> ports;
  bool SameContent(const ServiceInfo& o) const {
    return meta.SameContent(o.meta) && selector == o.selector && ports == o.ports;
  }
};

}  // namespace memha::model
