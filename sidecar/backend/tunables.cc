#include "sidecar/backend/tunables.h"

namespace memha {

Status Tunables::Validate() const {
  auto positive = [](ms v) { return v.count() > 0; };
  if (!positive(connect_timeout)) return Status::InvalidArgument("connect timeout must be > 0");
  if (!positive(request_timeout)) return Status::InvalidArgument("request timeout must be > 0");
  if (failure_limit < 1) return Status::InvalidArgument("failure limit must be >= 1");
  if (!positive(probe_interval)) return Status::InvalidArgument("probe interval must be > 0");
  if (probe_backoff_cap < probe_interval) return Status::InvalidArgument("probe backoff cap must be >= probe interval");
  if (connections_per_member < 1 || connections_per_member > 64) {
    return Status::InvalidArgument("connections per member must be 1-64");
  }
  if (mirror_queue_limit < 1) return Status::InvalidArgument("mirror queue limit must be >= 1");
  if (replay_log_limit < 1) return Status::InvalidArgument("replay log limit must be >= 1");
  if (warmup_exit_fill_ratio < 0 || warmup_exit_fill_ratio > 1) {
    return Status::InvalidArgument("warm-up exit fill ratio must be within 0..1");
  }
  if (max_value < 1 || max_value > (1u << 30)) return Status::InvalidArgument("max item size must be 1 B .. 1 GiB");
  if (client_max_pending < 1) return Status::InvalidArgument("client max pending must be >= 1");
  if (client_max_buffer < 4096) return Status::InvalidArgument("client max buffer must be >= 4 KiB");
  if (total_max_buffer < client_max_buffer) {
    return Status::InvalidArgument("total reply buffer must be >= the per-client buffer");
  }
  return Status::Ok();
}

}  // namespace memha
