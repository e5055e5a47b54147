#pragma once
// The data plane: one libevent loop that owns listeners, client connections, members and pool snapshots.
// Other threads hand it a validated topology through PostTopology(); it is swapped in on the loop thread
// without dropping connections or in-flight requests.
#include <future>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/topology.h"
#include "sidecar/core/flush_queue.h"
#include "sidecar/core/io_buffer.h"
#include "sidecar/core/libevent.h"
#include "sidecar/router/pool.h"

namespace memha {

class ClientConn;

class Proxy {
 public:
  static constexpr const char* kVersionString = "1.6.0-memha-" MEMHA_VERSION;

  Proxy(Tunables tunables, Metrics* metrics);
  ~Proxy();

  // Loop thread. Binds listeners for new pools before anything changes; on failure nothing changes.
  Status ApplyTopology(const Topology& topology);
  // Any thread: applies on the loop thread and waits for the result.
  Status PostTopology(Topology topology);

  int Run();                   // runs the loop until Shutdown() completes
  void RequestShutdown();      // any thread: stop accepting, finish in-flight requests, exit
  void RequestReload();        // any thread: calls the reload hook on the loop thread (SIGHUP)
  void SetReloadHook(std::function<void()> hook) { reload_hook_ = std::move(hook); }

  // For the client connections.
  event_base* base() const { return base_.get(); }
  const Tunables& tunables() const { return tunables_; }
  const protocol::Limits& limits() const { return limits_; }
  Metrics& metrics() { return *metrics_; }
  FlushQueue& flush_queue() { return flush_; }
  IoBuffer& read_scratch() { return read_scratch_; }  // shared by client reads; consumed before returning
  PoolPtr CurrentPool(const std::string& name) const;
  // The map entry of `name` (null if absent), valid while pools_generation() is unchanged: a client caches it
  // instead of looking the pool up by name for every request.
  const PoolPtr* CurrentPoolSlot(const std::string& name) const;
  uint64_t pools_generation() const { return pools_generation_; }
  void RemoveClient(ClientConn* client);
  // Reply bytes held for all clients (bounded by Tunables::total_max_buffer; the gauge follows every tick).
  void AdjustBuffered(int64_t delta);
  size_t buffered() const { return buffered_; }
  // Room reserved for the replies of requests in flight, all clients.
  void AdjustReserved(int64_t delta) { reserved_ = static_cast<size_t>(static_cast<int64_t>(reserved_) + delta); }
  size_t reserved() const { return reserved_; }
  std::string StatsText(const std::string& pool_name) const;
  bool has_topology() const { return has_topology_; }
  // Bound listen addresses, for tests that listen on port 0 ("pool name" -> "host:port").
  std::map<std::string, std::string> BoundListeners() const;
  // Unix sockets listened on ("pool name" -> path).
  std::map<std::string, std::string> UnixListeners() const;

 private:
  struct Listener {
    std::string pool;
    std::string address;
    ListenerPtr listener;
    Proxy* proxy = nullptr;
  };
  struct PendingTopology {
    Topology topology;
    std::promise<Status> done;
  };

  static void AcceptCb(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void TickCb(evutil_socket_t, short, void* arg);
  static void ApplyCb(evutil_socket_t, short, void* arg);
  static void SignalCb(evutil_socket_t sig, short, void* arg);
  void Tick();
  void Wake();
  void BeginDrain();
  // Closes every unix listener not in `keep` (by path) and removes its socket file.
  void CloseUnixListeners(const std::set<std::string>& keep);
  std::vector<RingChangePtr> RingChanges(const PoolSpec& spec, const std::vector<std::shared_ptr<Member>>& primary,
                                         std::vector<std::pair<RingChangePtr, std::shared_ptr<Member>>>* fences);
  static void ReadFence(const RingChangePtr& change, const std::shared_ptr<Member>& member);
  std::shared_ptr<Member> MemberFor(const MemberSpec& spec, bool initial,
                                    std::unordered_map<std::string, std::shared_ptr<Member>>* next);

  Tunables tunables_;
  protocol::Limits limits_;
  Metrics* metrics_;
  EventBasePtr base_;
  evdns_base* dns_ = nullptr;
  BackendEnv env_;
  EventPtr tick_event_;
  EventPtr apply_event_;
  int wake_fd_ = -1;
  FlushQueue flush_;
  IoBuffer read_scratch_;
  std::vector<EventPtr> signal_events_;
  std::function<void()> reload_hook_;

  std::map<std::string, PoolPtr> pools_;
  uint64_t pools_generation_ = 1;
  std::unordered_map<std::string, std::shared_ptr<Member>> members_;  // by address
  std::vector<std::shared_ptr<Member>> retiring_;  // out of the topology, ticked until idle
  std::map<std::string, Listener> listeners_;       // by pool name
  std::map<std::string, Listener> unix_listeners_;  // by pool name; address = the socket path
  std::unordered_map<ClientConn*, std::unique_ptr<ClientConn>> clients_;
  std::vector<std::unique_ptr<ClientConn>> closed_clients_;
  bool has_topology_ = false;
  Topology current_;
  Clock::time_point started_;
  uint64_t total_connections_ = 0;
  size_t buffered_ = 0;
  size_t reserved_ = 0;

  std::mutex post_mu_;
  std::vector<std::unique_ptr<PendingTopology>> posted_;
  bool shutdown_requested_ = false;  // guarded by post_mu_
  bool reload_requested_ = false;    // guarded by post_mu_
  bool draining_ = false;
  Clock::time_point drain_deadline_;
};

}  // namespace memha
