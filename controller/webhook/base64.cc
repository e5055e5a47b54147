#include "controller/webhook/base64.h"

#include "common/crypto/ed25519.h"

namespace memha::webhook {

// OpenSSL's (EVP_EncodeBlock/EVP_DecodeBlock, common/crypto), with strict padding: one implementation for the
// controller and the push signatures.
std::string Base64Encode(std::string_view data) { return crypto::Base64Encode(data); }

std::optional<std::string> Base64Decode(std::string_view text) { return crypto::Base64Decode(text); }

}  // namespace memha::webhook
