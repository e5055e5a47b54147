#pragma once
// Every health and data-path tunable in one place, with defaults and validation (cf. memcached proxy_tunables).
#include <chrono>
#include <cstddef>
#include <string>

#include "common/status.h"

namespace memha {

struct Tunables {
  using ms = std::chrono::milliseconds;
  ms connect_timeout{250};     // a blackholed member costs at most this once, then it is marked down
  ms request_timeout{250};     // a frozen member costs at most this once
  int failure_limit = 1;       // consecutive failures before a member is marked down
  ms probe_interval{250};      // first probe after marking down
  ms probe_backoff_cap{5000};  // probes back off to this while a member stays down
  ms flap_window{10000};       // going down again this soon after recovering doubles the next probe wait
  int connections_per_member = 1;
  size_t mirror_queue_limit = 10000;     // outstanding async mirror writes per backup member; beyond: dropped
  size_t replay_log_limit = 100000;      // remembered missed invalidations per member; beyond: flush on return
  ms warmup_max{300000};                 // a warming member is warm after this long at most ...
  size_t warmup_min_reads = 1000;        // ... or once, in a window of this many reads of it,
  double warmup_exit_fill_ratio = 0.05;  // ... fewer than this fraction had to be filled from the backup, and
                                         // at most half of its misses found the key there (Member::Tick)
  size_t max_value = 1024 * 1024;        // item size limit, as memcached's -I default
  size_t client_max_pending = 1024;      // pipelined requests in flight per client before reading pauses
  size_t client_max_buffer = 4 * 1024 * 1024;  // reply bytes held per client before reading pauses / reads defer
  size_t total_max_buffer = 16 * 1024 * 1024;  // reply bytes held or expected for all clients together

  Status Validate() const;
};

}  // namespace memha
