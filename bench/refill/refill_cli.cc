// memha-bench-refill: one bulk refill (controller/refill, the code the controller's leader runs) from the command
// line, for the chaos scenarios that need a member refilled without a Kubernetes API (bench/chaos.sh
// backup-empty, double). Prints one JSON line with the outcome and the counters.
//
//   memha-bench-refill --role primary|backup --target NAME=HOST:PORT --ring NAME,NAME,... --peer NAME=HOST:PORT ...
//                      [--keys-per-second N] [--bytes-per-second N] [--verify-delay-ms N]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "controller/refill/refill.h"

using namespace memha::refill;

namespace {

bool ParseMember(const std::string& text, RefillMember* out) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) return false;
  out->name = text.substr(0, eq);
  out->address = text.substr(eq + 1);
  return true;
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "memha-bench-refill: %s\nusage: memha-bench-refill --role primary|backup --target NAME=HOST:PORT "
               "--ring NAME,... --peer NAME=HOST:PORT [--peer ...] [--keys-per-second N] [--bytes-per-second N] "
               "[--verify-delay-ms N]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  RefillJob job;
  job.pool = "bench";
  RefillLimits limits;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + a).c_str());
    std::string v = argv[++i];
    if (a == "--role") {
      job.role = v;
    } else if (a == "--target") {
      if (!ParseMember(v, &job.target)) return Usage("--target wants NAME=HOST:PORT");
    } else if (a == "--ring") {
      job.ring = Split(v);
    } else if (a == "--peer") {
      RefillMember m;
      if (!ParseMember(v, &m)) return Usage("--peer wants NAME=HOST:PORT");
      job.peers.push_back(m);
    } else if (a == "--keys-per-second") {
      limits.keys_per_second = std::atof(v.c_str());
    } else if (a == "--bytes-per-second") {
      limits.bytes_per_second = std::atof(v.c_str());
    } else if (a == "--verify-delay-ms") {
      limits.verify_delay = std::chrono::milliseconds(std::atol(v.c_str()));
    } else {
      return Usage(("unknown option " + a).c_str());
    }
  }
  if (job.role != "primary" && job.role != "backup") return Usage("--role is primary or backup");
  if (job.target.name.empty() || job.ring.empty() || job.peers.empty()) return Usage("--target, --ring, --peer");
  if (memha::Status s = limits.Validate(); !s.ok()) return Usage(s.message().c_str());
  RefillCursor cursor;
  RefillCounters counters;
  auto start = std::chrono::steady_clock::now();
  RefillResult r = RunRefill(job, limits, &cursor, &counters, nullptr);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"outcome\":\"%s\",\"seconds\":%.3f,\"owned\":%llu,\"copied\":%llu,\"present\":%llu,"
              "\"undone\":%llu,\"missing\":%llu,\"key_errors\":%llu,\"bytes\":%llu,\"error\":\"%s\"}\n",
              std::string(ToString(r.outcome)).c_str(), seconds,
              static_cast<unsigned long long>(counters.owned.load()),
              static_cast<unsigned long long>(counters.copied.load()),
              static_cast<unsigned long long>(counters.present.load()),
              static_cast<unsigned long long>(counters.undone.load()),
              static_cast<unsigned long long>(counters.missing.load()),
              static_cast<unsigned long long>(counters.key_errors.load()),
              static_cast<unsigned long long>(counters.bytes.load()),
              r.outcome == RefillOutcome::kFailed ? r.error.message().c_str() : "");
  return r.outcome == RefillOutcome::kDone ? 0 : 1;
}
