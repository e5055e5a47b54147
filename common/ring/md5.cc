#include "common/ring/md5.h"

#include <cstring>

namespace memha {
namespace {

// K[i] = floor(abs(sin(i + 1)) * 2^32), tabulated in RFC 1321.
constexpr uint32_t kSine[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

inline uint32_t Rotl(uint32_t x, int c) { return (x << c) | (x >> (32 - c)); }

// Unrolled rounds (RFC 1321): the ring hashes every key, so this is on the hot path.
#define MEMHA_MD5_STEP(f, a, b, c, d, x, k, s) \
  a += f(b, c, d) + (x) + (k);                 \
  a = Rotl(a, s) + (b)
#define MEMHA_MD5_F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MEMHA_MD5_G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define MEMHA_MD5_H(x, y, z) ((x) ^ (y) ^ (z))
#define MEMHA_MD5_I(x, y, z) ((y) ^ ((x) | ~(z)))

void Block(uint32_t state[4], const uint8_t* p) {
  uint32_t m[16];
  for (int i = 0; i < 16; ++i) {
    m[i] = uint32_t(p[i * 4]) | uint32_t(p[i * 4 + 1]) << 8 | uint32_t(p[i * 4 + 2]) << 16 |
           uint32_t(p[i * 4 + 3]) << 24;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  for (int i = 0; i < 16; i += 4) {
    MEMHA_MD5_STEP(MEMHA_MD5_F, a, b, c, d, m[i], kSine[i], 7);
    MEMHA_MD5_STEP(MEMHA_MD5_F, d, a, b, c, m[i + 1], kSine[i + 1], 12);
    MEMHA_MD5_STEP(MEMHA_MD5_F, c, d, a, b, m[i + 2], kSine[i + 2], 17);
    MEMHA_MD5_STEP(MEMHA_MD5_F, b, c, d, a, m[i + 3], kSine[i + 3], 22);
  }
  for (int i = 16; i < 32; i += 4) {
    MEMHA_MD5_STEP(MEMHA_MD5_G, a, b, c, d, m[(5 * i + 1) % 16], kSine[i], 5);
    MEMHA_MD5_STEP(MEMHA_MD5_G, d, a, b, c, m[(5 * i + 6) % 16], kSine[i + 1], 9);
    MEMHA_MD5_STEP(MEMHA_MD5_G, c, d, a, b, m[(5 * i + 11) % 16], kSine[i + 2], 14);
    MEMHA_MD5_STEP(MEMHA_MD5_G, b, c, d, a, m[(5 * i + 16) % 16], kSine[i + 3], 20);
  }
  for (int i = 32; i < 48; i += 4) {
    MEMHA_MD5_STEP(MEMHA_MD5_H, a, b, c, d, m[(3 * i + 5) % 16], kSine[i], 4);
    MEMHA_MD5_STEP(MEMHA_MD5_H, d, a, b, c, m[(3 * i + 8) % 16], kSine[i + 1], 11);
    MEMHA_MD5_STEP(MEMHA_MD5_H, c, d, a, b, m[(3 * i + 11) % 16], kSine[i + 2], 16);
    MEMHA_MD5_STEP(MEMHA_MD5_H, b, c, d, a, m[(3 * i + 14) % 16], kSine[i + 3], 23);
  }
  for (int i = 48; i < 64; i += 4) {
    MEMHA_MD5_STEP(MEMHA_MD5_I, a, b, c, d, m[(7 * i) % 16], kSine[i], 6);
    MEMHA_MD5_STEP(MEMHA_MD5_I, d, a, b, c, m[(7 * i + 7) % 16], kSine[i + 1], 10);
    MEMHA_MD5_STEP(MEMHA_MD5_I, c, d, a, b, m[(7 * i + 14) % 16], kSine[i + 2], 15);
    MEMHA_MD5_STEP(MEMHA_MD5_I, b, c, d, a, m[(7 * i + 21) % 16], kSine[i + 3], 21);
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
}

#undef MEMHA_MD5_STEP
#undef MEMHA_MD5_F
#undef MEMHA_MD5_G
#undef MEMHA_MD5_H
#undef MEMHA_MD5_I

}  // namespace

std::array<uint8_t, 16> Md5(std::string_view data) {
  uint32_t state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  while (n >= 64) {
    Block(state, p);
    p += 64;
    n -= 64;
  }
  uint8_t tail[128] = {};
  std::memcpy(tail, p, n);
  tail[n] = 0x80;
  size_t tail_len = n + 1 + 8 <= 64 ? 64 : 128;
  uint64_t bits = uint64_t(data.size()) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_len - 8 + i] = static_cast<uint8_t>(bits >> (8 * i));
  Block(state, tail);
  if (tail_len == 128) Block(state, tail + 64);
  std::array<uint8_t, 16> out{};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) out[i * 4 + j] = static_cast<uint8_t>(state[i] >> (8 * j));
  }
  return out;
}

}  // namespace memha
