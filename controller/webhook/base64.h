#pragma once
// Standard base64 (RFC 4648, padded): AdmissionReview patches, Secret data, caBundle.
#include <optional>
#include <string>
#include <string_view>

namespace memha::webhook {

std::string Base64Encode(std::string_view data);
// nullopt on a character outside the alphabet or bad padding.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace memha::webhook
