#pragma once
// memha-controller's command line. Flags are "--name=value" or "--name value"; anything this list does not know
// goes to the webhook's flag list (controller/webhook/flags.h), so the chart and the code share one list.
#include <chrono>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "controller/push/pusher.h"
#include "controller/refill/manager.h"
#include "controller/webhook/flags.h"

namespace memha::app {

struct ControllerFlags {
  std::string kubeconfig;                 // empty: in-cluster, else $KUBECONFIG
  std::string ns;                         // the controller's namespace (Lease, signing keys, certificates)
  std::string lease_name = "memha-controller";
  std::string identity;                   // default: $POD_NAME / $MEMHA_POD_NAME, else the hostname
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  std::string admin_address = "0.0.0.0";
  uint16_t admin_port = 8080;             // --admin-port or --http-port
  std::chrono::seconds keys_refresh{30};  // the push-signing keys (Secret or file) re-read this often
  uint16_t sidecar_admin_port = 11299;
  std::chrono::seconds resync{60};
  size_t push_parallelism = 16;
  std::chrono::milliseconds push_timeout{3000};
  std::chrono::seconds member_grace{120};
  refill::ManagerOptions refill;                           // --refill, --refill-keys-per-second, ...
  std::chrono::milliseconds refill_probe_interval{10000};  // copied into `refill` once parsed
  std::chrono::milliseconds refill_verify_delay{1000};
  std::chrono::milliseconds refill_handover_delay{3000};
  std::string status_config_map = "memha-status";  // in --namespace; empty: pool status not stored
  log::Level log_level = log::Level::kInfo;
  webhook::WebhookSettings webhook;
  bool help = false;
  bool version = false;  // --version: print it and exit
};

// Parses argv[1..]. The error is one line naming the flag.
Result<ControllerFlags> ParseFlags(const std::vector<std::string>& args);
std::string FlagsHelp();

// "15s", "500ms", "2m", "1h" or a bare number of seconds.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

}  // namespace memha::app
