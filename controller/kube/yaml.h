#pragma once
// A small reader for the block-style YAML subset that kubeconfig files use (what kubectl, local-k8s and most
// tooling write), returning the same JSON value nlohmann would give for the equivalent JSON document.
//
// Supported: block mappings and sequences (also "- key: v" items and sequences at their key's indentation),
// plain / 'single' / "double" quoted scalars on one line, comments, blank lines, a leading "---", empty flow
// collections ({} and []) and one-line flow sequences/mappings of scalars. Plain true/false -> bool, null/~ ->
// null, decimal integers -> number; everything else is a string.
// Not supported (a clear error naming the line): block scalars (| and >), anchors/aliases/tags, multi-line
// scalars, several documents, nested flow collections, tabs in indentation.
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace memha::kube {

Result<nlohmann::json> ParseYamlSubset(std::string_view text);

}  // namespace memha::kube
