#pragma once
// Kubeconfig YAML, read with Debian's yaml-cpp (libyaml-cpp-dev), returned as the JSON value nlohmann would give
// for the equivalent JSON document, so the kubeconfig reader walks one kind of tree whether the file is YAML or JSON.
//
// All of YAML 1.2 that yaml-cpp reads: block scalars (| and >), anchors and aliases, multi-line and flow scalars,
// flow collections. Scalars typed as the YAML core schema does for plain scalars: true/false -> bool, null/~/empty
// -> null, decimal integers without a leading zero -> number; a quoted scalar and everything else is a string.
// Refused with a message naming the line: what yaml-cpp cannot parse, several documents, and keys repeated in a
// mapping (kubectl refuses them too).
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace memha::kube {

Result<nlohmann::json> ParseYaml(std::string_view text);

}  // namespace memha::kube
