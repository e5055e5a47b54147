// Refill speed: N keys of SIZE bytes in a backup memcached, refilled into an empty primary (a ring of one, so it
// owns every key), rate limits off. Not a ctest; run by hand:
//   build/tests/controller/refill/controller_refill_bench [keys=100000] [size=100] [verify_delay_ms=1000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "controller/refill/refill.h"
#include "tests/controller/refill/memcached_process.h"

using namespace memha::refill;

int main(int argc, char** argv) {
  const long keys = argc > 1 ? std::atol(argv[1]) : 100000;
  const long size = argc > 2 ? std::atol(argv[2]) : 100;
  const long verify_ms = argc > 3 ? std::atol(argv[3]) : 1000;
  // Room for every key (item header, key and slab rounding: about 1.3x the value), at least 1 GiB.
  const long megabytes = std::max(1024L, static_cast<long>(static_cast<double>(keys) * (size + 100) * 1.3 / (1 << 20)));
  testing::MemcachedProcess backup({"-m", std::to_string(megabytes)});
  testing::MemcachedProcess primary({"-m", std::to_string(megabytes)});
  {
    // Pipelined fill, 100 sets per write.
    auto c = MemberConnection::Connect(backup.address(), std::chrono::seconds(2));
    if (!c.ok()) return 1;
    std::string value(static_cast<size_t>(size), 'v');
    for (long base = 0; base < keys; base += 100) {
      std::string batch;
      long n = std::min(100L, keys - base);
      for (long i = 0; i < n; ++i) {
        batch += "ms bench:" + std::to_string(base + i) + " " + std::to_string(size) + " T0 F5 q\r\n" + value + "\r\n";
      }
      batch += "mn\r\n";
      auto deadline = SteadyClock::now() + std::chrono::seconds(10);
      if (!c.value()->Send(batch, deadline).ok()) return 1;
      while (c.value()->buffer().find("MN\r\n") == std::string_view::npos) {
        if (!c.value()->ReadMore(deadline).ok()) return 1;
      }
      c.value()->Consume(c.value()->buffer().size());
    }
  }
  RefillJob job;
  job.pool = "bench/primary";
  job.role = "primary";
  job.target = {"primary-0", primary.address()};
  job.ring = {"primary-0"};
  job.peers = {{"backup-0", backup.address()}};
  RefillLimits limits;
  limits.keys_per_second = 0;
  limits.bytes_per_second = 0;
  limits.verify_delay = std::chrono::milliseconds(verify_ms);
  RefillCursor cursor;
  RefillCounters counters;
  auto start = std::chrono::steady_clock::now();
  RefillResult r = RunRefill(job, limits, &cursor, &counters, nullptr);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("keys=%ld size=%ld outcome=%s copied=%llu seconds=%.2f keys_per_second=%.0f MB_per_second=%.1f\n", keys,
              size, std::string(ToString(r.outcome)).c_str(), static_cast<unsigned long long>(counters.copied.load()),
              seconds, static_cast<double>(counters.copied.load()) / seconds,
              static_cast<double>(counters.bytes.load()) / seconds / 1e6);
  return r.outcome == RefillOutcome::kDone && counters.copied.load() == static_cast<uint64_t>(keys) ? 0 : 1;
}
