#pragma once
// MD5 (RFC 1321). Used only for ketama placement, where libketama/twemproxy compatibility requires it.
#include <array>
#include <cstdint>
#include <string_view>

namespace memha {

std::array<uint8_t, 16> Md5(std::string_view data);

}  // namespace memha
