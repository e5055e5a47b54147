#pragma once
// memha-loadgen's command line: its options, their defaults, and parsing (--help prints the usage).
#include <cstddef>
#include <cstdint>
#include <string>

namespace memha::bench {

constexpr int kMaxMulti = 16;  // keys per multi-get at most

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "11211";
  std::string unix_path;  // --server unix:/path or /path: connect to a unix socket instead
  int connections = 1;
  int pipeline = 1;
  double rate = 0;  // total ops/s; 0 = closed loop
  double duration_s = 5;
  double warmup_s = 0;
  double get_ratio = 0.9;
  double delete_ratio = 0;
  size_t value_size = 100;
  uint32_t keys = 10000;
  int multiget = 1;
  std::string key_prefix = "memha:";
  bool verify = false;
  bool read_through = false;
  bool prefill = false;
  bool prefill_only = false;
  bool idle = false;
  bool progress = false;
  int timeout_ms = 1000;
  int max_outstanding = 256;
  std::string json_path = "-";
  std::string label;
  uint64_t seed = 42;
};

extern const char kUsage[];  // the --help text

// Fills `o` from argv; false (after a message on stderr) on an unknown option or invalid values. --help prints the
// usage and exits 0; an option without its value exits 2.
bool ParseOptions(int argc, char** argv, Options* o);

}  // namespace memha::bench
