#include "sidecar/proxy/proxy.h"

#include <malloc.h>

#include <event2/dns.h>
#include <netdb.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <algorithm>
#include <ctime>
#include <set>
#include <sstream>

#include "common/log.h"
#include "sidecar/proxy/client_conn.h"
#include "sidecar/router/replicate.h"

namespace memha {
namespace {

constexpr auto kTickInterval = std::chrono::milliseconds(10);
constexpr auto kDrainTimeout = std::chrono::seconds(10);

Result<ListenerPtr> Bind(event_base* base, const HostPort& hp, evconnlistener_cb cb, void* arg) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  if (int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Status::InvalidArgument("listen " + hp.ToString() + ": " + gai_strerror(rc));
  }
  ListenerPtr l(evconnlistener_new_bind(base, cb, arg, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                        1024, res->ai_addr, static_cast<int>(res->ai_addrlen)));
  int err = errno;
  freeaddrinfo(res);
  if (!l) return Status::Unavailable("listen " + hp.ToString() + ": " + std::strerror(err));
  return l;
}

// A listening unix socket at `path`. A socket file left by a process that is gone is replaced; one that a live
// process still accepts on, or a file that is not a socket, is refused. Mode 0666: the socket is as reachable as
// a loopback port is (who may connect is decided by the directory it is in: in a pod, an emptyDir only the pod's
// containers mount).
Result<ListenerPtr> BindUnix(event_base* base, const std::string& path, evconnlistener_cb cb, void* arg) {
  const std::string what = "listen unix " + path + ": ";
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) return Status::InvalidArgument(what + "path too long");
  std::memcpy(sa.sun_path, path.data(), path.size());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::InvalidArgument(what + "exists and is not a socket");
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return Status::Unavailable(what + "another process is listening on it");
    ::unlink(path.c_str());  // stale: its process is gone
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Unavailable(what + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Unavailable(what + std::strerror(err));
  }
  ::chmod(path.c_str(), 0666);
  ListenerPtr l(evconnlistener_new(base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024, fd));
  if (!l) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Status::Unavailable(what + std::strerror(err));
  }
  return l;
}

}  // namespace

Proxy::Proxy(Tunables tunables, Metrics* metrics) : tunables_(std::move(tunables)), metrics_(metrics) {
  // Values of up to an item's size pass through here: keep large buffers out of the heap so a burst of them is
  // returned to the system when it is over (glibc otherwise raises its mmap threshold after the first free).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  limits_.max_value = tunables_.max_value;
  base_.reset(event_base_new());
  dns_ = evdns_base_new(base_.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS);
  if (dns_ == nullptr) dns_ = evdns_base_new(base_.get(), 0);  // no resolv.conf: numeric addresses still work
  env_ = BackendEnv{base_.get(), dns_, &tunables_, metrics_, &flush_};
  tick_event_.reset(event_new(base_.get(), -1, EV_PERSIST, &TickCb, this));
  timeval tv = ToTimeval(kTickInterval);
  event_add(tick_event_.get(), &tv);
  // Other threads wake the loop through an eventfd, so libevent runs without its locks (evthread).
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  apply_event_.reset(event_new(base_.get(), wake_fd_, EV_READ | EV_PERSIST, &ApplyCb, this));
  event_add(apply_event_.get(), nullptr);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    signal_events_.emplace_back(evsignal_new(base_.get(), sig, &SignalCb, this));
    event_add(signal_events_.back().get(), nullptr);
  }
  started_ = Clock::now();
}

Proxy::~Proxy() {
  clients_.clear();
  closed_clients_.clear();
  // Requests still waiting on a member (async mirrors at exit) hold their jobs, which hold the pool, which holds
  // the member: drop them first, while every member is still owned here, so nothing is left in a cycle.
  DropDeferredVerifies();
  for (auto& [address, member] : members_) member->DropPending();
  for (auto& member : retiring_) member->DropPending();
  listeners_.clear();
  CloseUnixListeners({});
  pools_.clear();
  members_.clear();
  retiring_.clear();
  signal_events_.clear();
  tick_event_.reset();
  apply_event_.reset();
  if (dns_) evdns_base_free(dns_, 0);
  if (wake_fd_ >= 0) close(wake_fd_);
}

std::shared_ptr<Member> Proxy::MemberFor(const MemberSpec& spec, bool initial,
                                         std::unordered_map<std::string, std::shared_ptr<Member>>* next) {
  std::string key = spec.endpoint.ToString();
  if (auto it = next->find(key); it != next->end()) return it->second;
  std::shared_ptr<Member> m;
  if (auto it = members_.find(key); it != members_.end()) {
    m = it->second;
  } else {
    // Members present at start are taken as warm; a member that appears later is new, hence cold.
    m = std::make_shared<Member>(env_, spec.name, spec.endpoint, initial ? MemberHealth::kUp : MemberHealth::kWarming);
  }
  m->SetControllerState(spec.state);
  m->SetRefill(spec.refill);
  (*next)[key] = m;
  return m;
}

// A pool whose primary members changed records the change (router/pool.h, RingChange) on top of the history it
// had; every primary of the new ring gets its CAS fence read.
std::vector<RingChangePtr> Proxy::RingChanges(const PoolSpec& spec, const std::vector<std::shared_ptr<Member>>& primary,
                                              std::vector<std::pair<RingChangePtr, std::shared_ptr<Member>>>* fences) {
  auto old = pools_.find(spec.name);
  if (old == pools_.end()) return {};
  std::vector<RingChangePtr> changes = old->second->primary_changes;
  auto names = [](const std::vector<MemberSpec>& members) {
    std::vector<std::string> out;
    for (const MemberSpec& m : members) out.push_back(m.name);
    return out;
  };
  std::vector<std::string> before = names(old->second->spec.primary), after = names(spec.primary);
  std::vector<std::string> before_sorted = before, after_sorted = after;
  std::sort(before_sorted.begin(), before_sorted.end());
  std::sort(after_sorted.begin(), after_sorted.end());
  if (before_sorted == after_sorted) return changes;  // the ring is built from names: nothing moved
  auto change = std::make_shared<RingChange>(old->second->primary_ring, std::move(before));
  changes.insert(changes.begin(), change);
  if (changes.size() > kMaxRingChanges) changes.resize(kMaxRingChanges);
  std::vector<const Member*> fenced;  // names sharing an address share a member: one fence each
  for (const auto& m : primary) {
    if (std::find(fenced.begin(), fenced.end(), m.get()) != fenced.end()) continue;
    fenced.push_back(m.get());
    fences->emplace_back(change, m);
  }
  MEMHA_LOG(kInfo, "topology", "pool " << spec.name << ": primary members changed; moved keys are checked against "
                                       << "the backup (" << changes.size() << " changes remembered)");
  return changes;
}

// Stores a short-lived fence item on `member` and keeps the CAS memcached gave it: every item stored there before
// has a lower one.
void Proxy::ReadFence(const RingChangePtr& change, const std::shared_ptr<Member>& member) {
  static constexpr std::string_view kFence = "ms memha:fence 1 T2 c";
  std::weak_ptr<std::unordered_map<std::string, uint64_t>> cell = change->fences;
  std::string name = member->name();
  member->Send(0, protocol::MemberWire{kFence, "0\r\n"}, protocol::ReplyKind::kMeta,
               [cell, name](const OpResult& res) {
                 auto fences = cell.lock();
                 if (!fences || res.status != OpStatus::kOk || res.reply->error) return;  // stays unknown: suspect
                 uint64_t cas = CasOfLine(res.reply->line.in(res.buf));
                 if (cas != 0) (*fences)[name] = cas;
               });
}

Status Proxy::ApplyTopology(const Topology& topology) {
  // Listeners first: bind what is new into `fresh`; if any bind fails, `fresh` is dropped and nothing changes.
  std::map<std::string, ListenerPtr> fresh;  // by address
  for (const PoolSpec& pool : topology.pools) {
    std::string addr = pool.listen_endpoint.ToString();
    bool bound_now = std::any_of(listeners_.begin(), listeners_.end(),
                                 [&](const auto& kv) { return kv.second.address == addr; });
    if (bound_now || fresh.count(addr)) continue;
    auto bound = Bind(base_.get(), pool.listen_endpoint, &AcceptCb, nullptr);
    if (!bound.ok()) {
      metrics_->topology_updates(false).Increment();
      return bound.status();
    }
    fresh[addr] = std::move(bound).value();
  }
  std::map<std::string, ListenerPtr> fresh_unix;  // by path
  for (const PoolSpec& pool : topology.pools) {
    const std::string& path = pool.listen_unix;
    if (path.empty() || fresh_unix.count(path)) continue;
    bool bound_now = std::any_of(unix_listeners_.begin(), unix_listeners_.end(),
                                 [&](const auto& kv) { return kv.second.address == path; });
    if (bound_now) continue;
    auto bound = BindUnix(base_.get(), path, &AcceptCb, nullptr);
    if (!bound.ok()) {
      for (auto& [p, l] : fresh_unix) ::unlink(p.c_str());
      metrics_->topology_updates(false).Increment();
      return bound.status();
    }
    fresh_unix[path] = std::move(bound).value();
  }
  std::map<std::string, Listener> next_listeners;  // by pool name; a kept address keeps its socket
  for (const PoolSpec& pool : topology.pools) {
    std::string addr = pool.listen_endpoint.ToString();
    ListenerPtr socket;
    if (auto it = fresh.find(addr); it != fresh.end()) {
      socket = std::move(it->second);
    } else {
      for (auto& [name, l] : listeners_) {
        if (l.address == addr && l.listener) socket = std::move(l.listener);
      }
    }
    next_listeners[pool.name] = Listener{pool.name, addr, std::move(socket)};
  }
  listeners_ = std::move(next_listeners);
  for (auto& [name, l] : listeners_) {
    l.proxy = this;
    evconnlistener_set_cb(l.listener.get(), &AcceptCb, &l);
  }
  std::map<std::string, Listener> next_unix;
  std::set<std::string> unix_paths;
  for (const PoolSpec& pool : topology.pools) {
    if (pool.listen_unix.empty()) continue;
    ListenerPtr socket;
    if (auto it = fresh_unix.find(pool.listen_unix); it != fresh_unix.end()) {
      socket = std::move(it->second);
    } else {
      for (auto& [name, l] : unix_listeners_) {
        if (l.address == pool.listen_unix && l.listener) socket = std::move(l.listener);
      }
    }
    unix_paths.insert(pool.listen_unix);
    next_unix[pool.name] = Listener{pool.name, pool.listen_unix, std::move(socket)};
  }
  CloseUnixListeners(unix_paths);  // the ones no pool listens on any more (their sockets were not moved)
  unix_listeners_ = std::move(next_unix);
  for (auto& [name, l] : unix_listeners_) {
    l.proxy = this;
    evconnlistener_set_cb(l.listener.get(), &AcceptCb, &l);
  }

  const bool initial = !has_topology_;
  std::unordered_map<std::string, std::shared_ptr<Member>> next_members;
  std::map<std::string, PoolPtr> next_pools;
  std::vector<std::pair<RingChangePtr, std::shared_ptr<Member>>> fences;  // to read once the pools are in place
  for (const PoolSpec& spec : topology.pools) {
    std::vector<std::shared_ptr<Member>> primary, backup;
    for (const MemberSpec& m : spec.primary) primary.push_back(MemberFor(m, initial, &next_members));
    for (const MemberSpec& m : spec.backup) backup.push_back(MemberFor(m, initial, &next_members));
    std::vector<RingChangePtr> changes = RingChanges(spec, primary, &fences);
    next_pools[spec.name] = std::make_shared<const Pool>(spec, std::move(primary), std::move(backup), std::move(changes),
                                                         metrics_->ForPool(spec.name));
  }
  std::unordered_map<const Member*, std::vector<Member::Place>> places;  // memha_member_state{pool, role}
  for (const auto& [name, pool] : next_pools) {
    for (const auto& m : pool->primary) places[m.get()].emplace_back(name, kRolePrimary);
    for (const auto& m : pool->backup) places[m.get()].emplace_back(name, kRoleBackup);
  }
  for (auto& [key, m] : next_members) m->SetPlaces(std::move(places[m.get()]));
  for (auto& [key, m] : members_) {
    if (!next_members.count(key)) {
      m->SetPlaces({});
      retiring_.push_back(m);
    }
  }
  members_ = std::move(next_members);
  pools_ = std::move(next_pools);
  ++pools_generation_;
  current_ = topology;
  has_topology_ = true;
  metrics_->topology_epoch().Set(static_cast<double>(topology.epoch));
  metrics_->topology_version().Set(static_cast<double>(topology.version));
  metrics_->topology_updates(true).Increment();
  for (auto& [change, member] : fences) ReadFence(change, member);
  MEMHA_LOG(kInfo, "topology", "applied epoch=" << topology.epoch << " version=" << topology.version << " pools="
                                                << topology.pools.size() << " members=" << members_.size());
  return Status::Ok();
}

Status Proxy::PostTopology(Topology topology) {
  auto pending = std::make_unique<PendingTopology>();
  pending->topology = std::move(topology);
  std::future<Status> result = pending->done.get_future();
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(pending));
  }
  Wake();
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return Status::Unavailable("the data plane did not apply the topology within 10s");
  }
  return result.get();
}

void Proxy::RequestShutdown() {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    shutdown_requested_ = true;
  }
  Wake();
}

void Proxy::RequestReload() {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    reload_requested_ = true;
  }
  Wake();
}

void Proxy::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof one);
  (void)n;  // EAGAIN: the counter is already non-zero, the loop wakes anyway
}

void Proxy::ApplyCb(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Proxy*>(arg);
  uint64_t count;
  ssize_t n = read(fd, &count, sizeof count);
  (void)n;
  std::vector<std::unique_ptr<PendingTopology>> posted;
  bool shutdown, reload;
  {
    std::lock_guard<std::mutex> lock(self->post_mu_);
    posted.swap(self->posted_);
    shutdown = self->shutdown_requested_;
    reload = self->reload_requested_;
    self->reload_requested_ = false;
  }
  for (auto& p : posted) p->done.set_value(self->ApplyTopology(p->topology));
  if (reload && self->reload_hook_) self->reload_hook_();
  if (shutdown) self->BeginDrain();
}

void Proxy::SignalCb(evutil_socket_t sig, short, void* arg) {
  auto* self = static_cast<Proxy*>(arg);
  if (sig == SIGHUP) {
    if (self->reload_hook_) self->reload_hook_();
    return;
  }
  MEMHA_LOG(kInfo, "proxy", "signal " << sig << ": draining");
  self->BeginDrain();
}

void Proxy::BeginDrain() {
  if (draining_) return;
  draining_ = true;
  drain_deadline_ = Clock::now() + kDrainTimeout;
  listeners_.clear();  // stop accepting
  CloseUnixListeners({});
  std::vector<ClientConn*> clients;
  for (auto& [ptr, c] : clients_) clients.push_back(ptr);
  for (ClientConn* c : clients) c->CloseWhenIdle();
}

void Proxy::AcceptCb(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  Proxy* self = l->proxy;
  if (self->draining_) {
    evutil_closesocket(fd);
    return;
  }
  auto client = std::make_unique<ClientConn>(self, l->pool, fd);
  ClientConn* key = client.get();
  self->clients_[key] = std::move(client);
  ++self->total_connections_;
  self->metrics_->client_connections().Increment();
  self->metrics_->client_connections_total().Increment();
}

void Proxy::TickCb(evutil_socket_t, short, void* arg) { static_cast<Proxy*>(arg)->Tick(); }

void Proxy::Tick() {
  auto now = Clock::now();
  metrics_->buffered_reply_bytes().Set(static_cast<double>(buffered_));  // every 10 ms, not per change
  for (auto& [key, m] : members_) m->Tick(now);
  RunDeferredVerifies();                                                                // router/replicate.h
  for (const auto& [name, pool] : pools_) DrainRepairs(pool, metrics_, &tunables_);
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    (*it)->Tick(now);
    if (it->use_count() == 1 && (*it)->Idle()) {
      it = retiring_.erase(it);
    } else {
      ++it;
    }
  }
  closed_clients_.clear();
  if (draining_ && (clients_.empty() || now > drain_deadline_)) {
    if (!clients_.empty()) MEMHA_LOG(kWarn, "proxy", clients_.size() << " clients still busy at drain deadline");
    event_base_loopexit(base_.get(), nullptr);
  }
}

void Proxy::RemoveClient(ClientConn* client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  closed_clients_.push_back(std::move(it->second));
  clients_.erase(it);
  metrics_->client_connections().Decrement();
}

void Proxy::AdjustBuffered(int64_t delta) {
  // Several times per request: the gauge (an atomic read-modify-write) is set once per tick instead.
  buffered_ = static_cast<size_t>(static_cast<int64_t>(buffered_) + delta);
}

PoolPtr Proxy::CurrentPool(const std::string& name) const {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : it->second;
}

const PoolPtr* Proxy::CurrentPoolSlot(const std::string& name) const {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : &it->second;
}

std::map<std::string, std::string> Proxy::BoundListeners() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, l] : listeners_) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(evconnlistener_get_fd(l.listener.get()), reinterpret_cast<sockaddr*>(&ss), &len);
    char host[NI_MAXHOST], port[NI_MAXSERV];
    getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    HostPort hp{host, static_cast<uint16_t>(std::stoi(port))};
    out[name] = hp.ToString();
  }
  return out;
}

std::map<std::string, std::string> Proxy::UnixListeners() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, l] : unix_listeners_) out[name] = l.address;
  return out;
}

void Proxy::CloseUnixListeners(const std::set<std::string>& keep) {
  for (auto it = unix_listeners_.begin(); it != unix_listeners_.end();) {
    Listener& l = it->second;
    if (keep.count(l.address) > 0 && !l.listener) {
      ++it;  // moved to the next set (ApplyTopology): the socket lives on
      continue;
    }
    if (l.listener) {
      l.listener.reset();
      if (keep.count(l.address) == 0) ::unlink(l.address.c_str());
    }
    it = unix_listeners_.erase(it);
  }
}

std::string Proxy::StatsText(const std::string& pool_name) const {
  std::ostringstream os;
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
  os << "STAT pid " << getpid() << "\r\n"
     << "STAT uptime " << uptime << "\r\n"
     << "STAT time " << std::time(nullptr) << "\r\n"
     << "STAT version " << kVersionString << "\r\n"
     << "STAT curr_connections " << clients_.size() << "\r\n"
     << "STAT total_connections " << total_connections_ << "\r\n"
     << "STAT memha_topology_epoch " << current_.epoch << "\r\n"
     << "STAT memha_topology_version " << current_.version << "\r\n";
  if (PoolPtr pool = CurrentPool(pool_name)) {
    os << "STAT memha_pool " << pool->spec.name << "\r\n";
    for (const auto& [role, list] : {std::pair{"primary", &pool->primary}, std::pair{"backup", &pool->backup}}) {
      for (const auto& m : *list) {
        os << "STAT memha_" << role << ":" << m->name() << " "
           << (m->controller_down() ? "down" : ToString(m->health())) << "\r\n";
      }
    }
  }
  os << "END\r\n";
  return os.str();
}

// One pass of the loop runs every ready event, then writes what those events queued: requests to a member
// from many clients leave in one write, replies to a client in one writev.
int Proxy::Run() {
  for (;;) {
    int rc = event_base_loop(base_.get(), EVLOOP_ONCE);
    flush_.Run();
    if (rc != 0 || event_base_got_exit(base_.get()) || event_base_got_break(base_.get())) return rc < 0 ? rc : 0;
  }
}

}  // namespace memha
