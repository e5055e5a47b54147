#pragma once
// The mutating admission webhook as a pure function: an AdmissionReview (admission.k8s.io/v1) for a Pod in,
// the AdmissionReview response out, with a base64 JSONPatch that injects memha-sidecar when the pod asks for it.
//
// Rules (the chart's namespaceSelector/objectSelector decide which pods are sent here at all):
//   label memha.io/inject "false" opts out; "true" (or a selected namespace) injects;
//   annotation memha.io/pools is required — missing or malformed: allowed unchanged, with a warning;
//   an already-injected pod comes back unchanged; only CREATE is mutated; dryRun gets the same answer
//   (the caller skips its side effects).
// A request that cannot be answered (invalid JSON, not an AdmissionReview v1, no request.uid) gets HTTP 400;
// everything else is allowed, because a memha problem must never break pod creation.
#include <string>
#include <string_view>
#include <vector>

#include "controller/topology/annotations.h"
#include "controller/webhook/sidecar_spec.h"

namespace memha::webhook {

inline constexpr const char* kInjectLabel = "memha.io/inject";
inline constexpr const char* kPoolsAnnotation = topology::kPoolsAnnotation.data();
inline constexpr const char* kInjectedLabel = "memha.io/sidecar";  // value "injected", set on injected pods

// Why a pod was (not) injected; one name per value, shared by logs and metric labels.
enum class Decision {
  kInjected,
  kOptedOut,          // label memha.io/inject=false
  kAlreadyInjected,   // a container named memha-sidecar is already there
  kNotCreate,         // UPDATE/DELETE/CONNECT, or a subresource
  kNoPools,           // no memha.io/pools annotation
  kBadPools,          // memha.io/pools does not parse
  kBadInjectLabel,    // memha.io/inject is neither "true" nor "false"
  kBadSocket,         // memha.io/socket is neither on nor off
  kUnsupportedPod,    // hostNetwork, or a volume name memha needs is taken
  kNotPod,            // the webhook was sent another kind (misconfigured rules)
  kBadObject,         // request.object missing or not a pod spec
  kBadRequest,        // the review itself cannot be answered (HTTP 400)
};
std::string_view DecisionName(Decision decision);

struct AdmissionResult {
  int http_status = 200;
  std::string body;            // the AdmissionReview response, or {"error": ...} with 400
  std::string content_type = "application/json";
  Decision decision = Decision::kBadRequest;
  std::string reason;          // for logs; the warning text when there is one
  // From the request, for the caller's side effects and logs.
  std::string uid;
  std::string api_version;
  std::string pod_namespace;
  std::string pod_name;        // may be empty (generateName)
  std::string owner_kind;      // the pod's controller (ownerReferences, controller: true), e.g. ReplicaSet
  std::string owner_name;
  std::string owner_api_version;
  bool dry_run = false;
  // Selected for injection but not injected, for a reason its owner should hear of (an Event): no or a malformed
  // memha.io/pools, a port or volume the sidecar needs, hostNetwork, a bad memha.io/inject label.
  bool WorthAnEvent() const {
    return decision == Decision::kNoPools || decision == Decision::kBadPools ||
           decision == Decision::kUnsupportedPod || decision == Decision::kBadInjectLabel;
  }
  bool patched() const { return decision == Decision::kInjected; }
};

AdmissionResult ReviewPod(std::string_view body, const InjectConfig& config);

// The same review answered "allowed, unchanged" with a warning (used when a side effect of injecting fails).
AdmissionResult AllowUnchanged(const AdmissionResult& result, Decision decision, const std::string& warning);

// The JSONPatch (as JSON) that injects the sidecar into `pod`; exposed for tests.
// `socket`: memha.io/socket is on: the socket volume, mounted at topology::kSocketDir with MEMHA_SOCKET_DIR set in
// the sidecar and in every application container.
nlohmann::json InjectionPatch(const nlohmann::json& pod, const InjectConfig& config, bool socket = false);

}  // namespace memha::webhook
