#pragma once
// Ed25519 (RFC 8032) through OpenSSL's EVP API: the controller signs topology pushes, sidecars verify them.
// Keys travel as standard base64 of their raw 32 bytes (a private key is its 32-byte seed).
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha::crypto {

inline constexpr size_t kEd25519KeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;

struct Ed25519KeyPair {
  std::string seed;        // raw 32 bytes: the private key
  std::string public_key;  // raw 32 bytes
};

Result<Ed25519KeyPair> GenerateEd25519();
Result<std::string> Ed25519PublicKey(std::string_view seed);
Result<std::string> Ed25519Sign(std::string_view seed, std::string_view message);
// False on any malformed key or signature, never an error.
bool Ed25519Verify(std::string_view public_key, std::string_view message, std::string_view signature);

// Standard padded base64 (EVP_EncodeBlock / EVP_DecodeBlock); Decode refuses bad characters and padding.
std::string Base64Encode(std::string_view data);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace memha::crypto
