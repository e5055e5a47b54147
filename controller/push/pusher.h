#pragma once
// TopologyPusher: delivers each sidecar its desired topology (PUT /v1/topology, DESIGN.md "Topology push").
//
// Level-based and coalescing: Set() records the newest desired state per sidecar; a fixed pool of workers sends
// whatever is newest when the sidecar's turn comes, so a slow sidecar never receives a backlog of old states.
// Per sidecar: retries with exponential backoff and jitter, a 409 ("someone newer owns it") waits
// `refused_retry`, and every sidecar is re-pushed every `resync` (the sidecar answers 200 to the same
// generation). Timeouts bound every request, so a hanging sidecar holds one worker for at most that long.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/topology.h"

namespace memha::crypto { class PushSigner; }

namespace httplib { class Client; }

namespace memha::push {

using Clock = std::chrono::steady_clock;

// Outcome of one PUT. Closed set; also the `result` metric label.
enum class PushResult : uint8_t {
  kOk,        // 200: applied, or already had this generation
  kRefused,   // 409: the sidecar has a newer (epoch, version): a newer leader owns it
  kRejected,  // other 4xx: a signature refused (401/403) or a topology the sidecar refused (400)
  kError,     // 5xx, connection refused, reset
  kTimeout,   // no answer within the timeouts
  kCount
};
std::string_view ToString(PushResult result);

struct PusherOptions {
  size_t parallelism = 16;                              // worker threads = requests in flight at most
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds request_timeout{3000};      // read and write, each
  std::chrono::milliseconds backoff_initial{250};       // first retry after a failure
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds refused_retry{30000};       // after a 409, unless a newer state comes
  std::chrono::milliseconds resync{60000};              // re-push of an acknowledged state (±10% jitter)
  // Signs every push for its pod (common/crypto/push_signature.h); null: unsigned (sidecars refuse them). With a signer, a
  // 409 naming a held epoch above ours (no leader issued it: forged, or a state file from elsewhere) is answered
  // at once with the same state as a signed reset.
  crypto::PushSigner* signer = nullptr;
  // Asked (from a worker thread) before a reset: true only if the epoch held by the sidecar is above every epoch
  // a leader has had (the controller reads the Lease afresh). Null: no reset is ever sent.
  std::function<bool(uint64_t held_epoch)> confirm_reset;
  Status Validate() const;
};

// Metrics hook (implemented by the admin module); called from worker threads.
class PushObserver {
 public:
  virtual ~PushObserver() = default;
  virtual void OnPush(PushResult result, double seconds) = 0;
};

struct PushTarget {
  std::string pod;      // "ns/name"
  std::string address;  // sidecar admin "host:port"; empty: not addressable yet (kept, not pushed)
  std::shared_ptr<const Topology> topology;
  std::string uid;      // the pod's uid, bound into the signature (empty: by name only)
};

struct SidecarStatus {
  std::string address;
  uint64_t desired_epoch = 0, desired_version = 0;
  bool acked = false;  // the sidecar acknowledged a generation
  uint64_t acked_epoch = 0, acked_version = 0;
  std::optional<PushResult> last_result;
  std::string last_error;
  int failures = 0;  // consecutive
  uint64_t resets = 0;  // signed epoch resets sent to this sidecar
  bool UpToDate() const { return acked && acked_epoch == desired_epoch && acked_version == desired_version; }
};

class TopologyPusher {
 public:
  explicit TopologyPusher(PusherOptions options, PushObserver* observer = nullptr);
  ~TopologyPusher();
  TopologyPusher(const TopologyPusher&) = delete;
  TopologyPusher& operator=(const TopologyPusher&) = delete;

  // Starts the workers (on becoming leader); every known sidecar is due at once. Idempotent.
  void Start();
  // Stops the workers (on losing leadership, shutdown): aborts requests in flight, keeps the desired state.
  void Stop();
  bool Running() const;

  // The newest desired state of one sidecar. Cheap when nothing changed (same address and generation).
  void Set(const PushTarget& target);
  void Remove(const std::string& pod);
  // The whole desired state: Set() for each target, Remove() for every sidecar not listed.
  void Replace(const std::vector<PushTarget>& targets);

  size_t Size() const;
  // Sidecars (with an address) whose acknowledged generation is not the desired one.
  size_t Behind() const;
  std::optional<SidecarStatus> Sidecar(const std::string& pod) const;

 private:
  struct Entry {
    uint64_t id = 0;  // incarnation: a completion for a removed-then-re-added sidecar is ignored
    std::string address;
    std::string uid;
    bool reset = false;  // the next push is a signed epoch reset
    std::shared_ptr<const Topology> desired;
    std::shared_ptr<const Topology> sent;  // in flight
    std::string sent_address;
    SidecarStatus status;
    bool in_flight = false;
    bool scheduled = false;
    Clock::time_point due{};
    Clock::time_point backoff_until{};  // failures: a newer state does not skip the wait
  };

  void SetLocked(const PushTarget& target);
  void Schedule(const std::string& pod, Entry& e, Clock::time_point when);  // lock held
  void Unschedule(const std::string& pod, Entry& e);                        // lock held
  void WorkerLoop();
  PushResult Send(const std::string& address, const std::string& pod, const std::string& uid, bool reset,
                  const std::string& body, std::string* error, std::optional<uint64_t>* held_epoch);
  void Complete(const std::string& pod, uint64_t id, PushResult result, const std::string& error,
                std::optional<uint64_t> held_epoch, bool was_reset, bool reset_confirmed);  // lock held
  Clock::duration Jitter(Clock::duration base, double low, double high);             // lock held

  const PusherOptions options_;
  PushObserver* observer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
  std::set<std::pair<Clock::time_point, std::string>> due_;
  std::set<httplib::Client*> active_;
  std::vector<std::thread> workers_;
  bool running_ = false;
  bool stopping_ = false;
  uint64_t next_id_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace memha::push
