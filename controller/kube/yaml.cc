#include "controller/kube/yaml.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace memha::kube {
namespace {

using nlohmann::json;

Status Error(const YAML::Mark& mark, const std::string& what) {
  return Status::InvalidArgument("yaml: line " + std::to_string(mark.line + 1) + ": " + what);
}

// A plain decimal integer the way kubectl's YAML reader types it: "12", "-3"; "012" and "1.5" stay strings.
bool IsInteger(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size() || s.size() - i > 18) return false;
  if (s[i] == '0' && s.size() - i > 1) return false;
  for (size_t j = i; j < s.size(); ++j) {
    if (s[j] < '0' || s[j] > '9') return false;
  }
  return true;
}

json Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() != "?") return s;  // quoted ("!") or explicitly tagged: a string as written
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (IsInteger(s)) return std::strtoll(s.c_str(), nullptr, 10);
  return s;
}

Result<json> Convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json(nullptr);
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) {
        auto v = Convert(item);
        if (!v.ok()) return v.status();
        out.push_back(std::move(v).value());
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return Error(kv.first.Mark(), "a mapping key must be a scalar");
        const std::string& key = kv.first.Scalar();
        if (out.contains(key)) return Error(kv.first.Mark(), "duplicate key \"" + key + "\"");
        auto v = Convert(kv.second);
        if (!v.ok()) return v.status();
        out[key] = std::move(v).value();
      }
      return out;
    }
  }
  return Status::InvalidArgument("yaml: unknown node type");
}

}  // namespace

Result<json> ParseYaml(std::string_view text) {
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    if (documents.size() > 1) return Error(documents[1].Mark(), "several documents in one kubeconfig");
    if (documents.empty()) return json(nullptr);
    return Convert(documents[0]);
  } catch (const YAML::Exception& e) {
    return Error(e.mark, e.msg);
  } catch (const std::exception& e) {  // never let one escape (bad_alloc aside, nothing else is expected)
    return Status::InvalidArgument(std::string("yaml: ") + e.what());
  }
}

}  // namespace memha::kube
