#include "bench/loadgen/options.h"

#include <cstdio>
#include <cstdlib>

namespace memha::bench {

const char kUsage[] =
    "Usage: memha-loadgen --server HOST:PORT|unix:PATH [options]\n"
    "  --connections N      connections (default 1)\n"
    "  --pipeline D         closed loop: requests in flight per connection (default 1)\n"
    "  --rate R             open loop: total requests/s at fixed intervals per connection (default 0 = closed)\n"
    "  --duration S         seconds of load (default 5)      --warmup S  seconds left out of the summary (0)\n"
    "  --get-ratio F        fraction of gets (default 0.9)   --delete-ratio F  fraction of deletes (0)\n"
    "  --value-size B       set value size (default 100)     --keys K    key space (default 10000)\n"
    "  --multiget M         keys per get (default 1, max 16) --key-prefix P (default memha:)\n"
    "  --prefill            set every key before the run      --prefill-only  prefill and exit\n"
    "  --verify             check every read against acknowledged writes (stale / resurrected)\n"
    "  --read-through       on a miss, set the key (like an application cache)\n"
    "  --timeout-ms N       a request older than this fails, its connection is reopened (default 1000)\n"
    "  --max-outstanding N  open loop: cap of requests in flight per connection (default 256)\n"
    "  --idle               open the connections and hold them for --duration, no requests\n"
    "  --json FILE          write the JSON result here (default -: stdout)\n"
    "  --label S            label copied into the JSON    --seed N    RNG seed\n"
    "  --progress           one line per second on stderr\n";

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto need = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "memha-loadgen: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--server") {
      std::string s = need("--server");
      if (s.rfind("unix:", 0) == 0) s = s.substr(5);
      if (!s.empty() && s.front() == '/') {
        o->unix_path = s;
        continue;
      }
      size_t colon = s.rfind(':');
      if (colon == std::string::npos) return false;
      o->host = s.substr(0, colon);
      if (o->host.size() > 1 && o->host.front() == '[') o->host = o->host.substr(1, o->host.size() - 2);
      o->port = s.substr(colon + 1);
    } else if (a == "--connections") o->connections = std::atoi(need("--connections"));
    else if (a == "--pipeline") o->pipeline = std::atoi(need("--pipeline"));
    else if (a == "--rate") o->rate = std::atof(need("--rate"));
    else if (a == "--duration") o->duration_s = std::atof(need("--duration"));
    else if (a == "--warmup") o->warmup_s = std::atof(need("--warmup"));
    else if (a == "--get-ratio") o->get_ratio = std::atof(need("--get-ratio"));
    else if (a == "--delete-ratio") o->delete_ratio = std::atof(need("--delete-ratio"));
    else if (a == "--value-size") o->value_size = static_cast<size_t>(std::atol(need("--value-size")));
    else if (a == "--keys") o->keys = static_cast<uint32_t>(std::atol(need("--keys")));
    else if (a == "--multiget") o->multiget = std::atoi(need("--multiget"));
    else if (a == "--key-prefix") o->key_prefix = need("--key-prefix");
    else if (a == "--verify") o->verify = true;
    else if (a == "--read-through") o->read_through = true;
    else if (a == "--prefill") o->prefill = true;
    else if (a == "--prefill-only") o->prefill = o->prefill_only = true;
    else if (a == "--idle") o->idle = true;
    else if (a == "--progress") o->progress = true;
    else if (a == "--timeout-ms") o->timeout_ms = std::atoi(need("--timeout-ms"));
    else if (a == "--max-outstanding") o->max_outstanding = std::atoi(need("--max-outstanding"));
    else if (a == "--json") o->json_path = need("--json");
    else if (a == "--label") o->label = need("--label");
    else if (a == "--seed") o->seed = std::strtoull(need("--seed"), nullptr, 10);
    else {
      std::fprintf(stderr, "memha-loadgen: unknown option %s\n", a.c_str());
      return false;
    }
  }
  if (o->connections < 1 || o->pipeline < 1 || o->keys < 1 || o->multiget < 1 || o->multiget > kMaxMulti ||
      o->duration_s <= 0 || o->timeout_ms < 1 || o->max_outstanding < 1 || o->get_ratio + o->delete_ratio > 1.0) {
    std::fprintf(stderr, "memha-loadgen: invalid options\n");
    return false;
  }
  return true;
}

}  // namespace memha::bench
