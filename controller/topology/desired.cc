#include "controller/topology/desired.h"

#include <optional>
#include <set>
#include <utility>

namespace memha::topology {
namespace {

using model::PodInfo;
using model::ServiceInfo;

bool Selects(const ServiceInfo& service, const PodInfo& pod) {
  if (service.selector.empty() || pod.meta.ns != service.meta.ns) return false;
  for (const auto& [k, v] : service.selector) {
    auto it = pod.meta.labels.find(k);
    if (it == pod.meta.labels.end() || it->second != v) return false;
  }
  return true;
}

std::string Address(const std::string& ip, int port) {
  return HostPort{ip, static_cast<uint16_t>(port)}.ToString();
}

const std::string* Annotation(const model::ObjectMeta& meta, std::string_view key) {
  auto it = meta.annotations.find(std::string(key));
  return it == meta.annotations.end() ? nullptr : &it->second;
}

// One pass of the computation: the pools are computed once per Service, on first use.
class Pass {
 public:
  Pass(const model::StoreView& view, const Options& options, const State& previous, Clock::time_point now,
       State* next, std::vector<TopologyError>* errors)
      : view_(view), options_(options), previous_(previous), now_(now), next_(next), errors_(errors) {}

  void Error(std::string kind, std::string object, ErrorReason reason, std::string message) {
    TopologyError e{std::move(kind), std::move(object), reason, std::move(message)};
    if (reported_.insert(e).second) errors_->push_back(std::move(e));
  }

  // The members of the pool that `service` defines, sorted by name (ring identity).
  const std::vector<MemberSpec>& Members(const ServiceInfo& service) {
    std::string key = service.meta.Key();
    auto cached = members_.find(key);
    if (cached != members_.end()) return cached->second;
    std::vector<MemberSpec>& out = members_[key];
    const model::ServicePort* port = MemcachedPort(service);
    if (port == nullptr) Error("Service", key, ErrorReason::kNoMemcachedPort, "the Service has no ports");

    const auto* known_before = [&]() -> const std::map<std::string, KnownMember>* {
      auto it = previous_.members.find(key);
      return it == previous_.members.end() ? nullptr : &it->second;
    }();
    std::map<std::string, KnownMember>& known = next_->members[key];
    std::map<std::string, MemberSpec> by_name;

    // Pods are keyed "ns/name": the Service's namespace is one contiguous range.
    std::string prefix = service.meta.ns + "/";
    for (auto it = view_.pods.lower_bound(prefix); it != view_.pods.end() && it->first.starts_with(prefix); ++it) {
      const PodInfo& pod = it->second;
      if (!Selects(service, pod)) continue;
      MemberSpec m;
      m.name = pod.meta.name;
      m.state = PodMemberState(pod);
      int target = port != nullptr ? ResolveTargetPort(*port, pod) : 0;
      if (!pod.pod_ip.empty() && target > 0) m.address = Address(pod.pod_ip, target);
      const KnownMember* before = nullptr;
      if (known_before != nullptr) {
        auto k = known_before->find(m.name);
        if (k != known_before->end()) before = &k->second;
      }
      if (m.address.empty()) {
        // Not addressable now (no IP yet, or its port is not declared): keep the name on the ring, down, at the
        // last address it had, so its keys fail over instead of moving. Never seen with an address: omitted.
        if (before == nullptr) continue;
        m.address = before->address;
        if (m.state == MemberState::kUp) m.state = MemberState::kDown;
      }
      known[m.name] = KnownMember{m.address, now_};
      by_name.emplace(m.name, std::move(m));
    }
    // Members that vanished within the grace period stay, down.
    if (known_before != nullptr) {
      for (const auto& [name, k] : *known_before) {
        if (by_name.count(name) > 0 || now_ - k.seen >= options_.member_grace) continue;
        known[name] = k;
        MemberSpec m;
        m.name = name;
        m.address = k.address;
        m.state = MemberState::kDown;
        by_name.emplace(name, std::move(m));
      }
    }
    const auto marks = options_.refill.find(key);
    for (auto& [name, m] : by_name) {
      if (auto ep = ParseHostPort(m.address); ep.ok()) m.endpoint = ep.value();
      if (marks != options_.refill.end()) {
        if (auto mark = marks->second.find(name); mark != marks->second.end()) m.refill = mark->second;
      }
      out.push_back(std::move(m));
    }
    return out;
  }

  // The Service's annotations; a bad one keeps the last good value (or the default) and reports an error.
  const PoolSettings& Settings(const ServiceInfo& service) {
    std::string key = service.meta.Key();
    auto cached = next_->settings.find(key);
    if (cached != next_->settings.end()) return cached->second;
    PoolSettings s;
    if (auto prev = previous_.settings.find(key); prev != previous_.settings.end()) s = prev->second;
    const model::ObjectMeta& meta = service.meta;
    if (const std::string* v = Annotation(meta, kWritePolicyAnnotation)) {
      auto p = ParseWritePolicyAnnotation(*v);
      if (p.ok()) {
        s.write_policy = p.value();
      } else {
        Error("Service", key, ErrorReason::kBadWritePolicy,
              std::string(kWritePolicyAnnotation) + " " + p.status().message() + "; keeping " +
                  std::string(ToString(s.write_policy)));
      }
    } else {
      s.write_policy = WritePolicy::kAsync;
    }
    if (const std::string* v = Annotation(meta, kWarmupAnnotation)) {
      auto w = ParseWarmupAnnotation(*v);
      if (w.ok()) {
        s.warmup = w.value();
      } else {
        Error("Service", key, ErrorReason::kBadWarmup,
              std::string(kWarmupAnnotation) + " " + w.status().message() + "; keeping " + (s.warmup ? "on" : "off"));
      }
    } else {
      s.warmup = true;
    }
    if (const std::string* v = Annotation(meta, kBackupPoolAnnotation)) {
      auto b = ParseServiceRef(*v, meta.ns);
      if (!b.ok()) {
        Error("Service", key, ErrorReason::kBadBackupPool,
              std::string(kBackupPoolAnnotation) + ": " + b.status().message() + "; keeping " +
                  (s.backup.empty() ? "no backup" : s.backup));
      } else if (b.value() == key) {
        Error("Service", key, ErrorReason::kBadBackupPool,
              std::string(kBackupPoolAnnotation) + " names the pool itself; keeping " +
                  (s.backup.empty() ? "no backup" : s.backup));
      } else {
        s.backup = b.value();
      }
    } else {
      s.backup.clear();
    }
    return next_->settings.emplace(key, std::move(s)).first->second;
  }

  // The pool `service` defines (members, backup, settings), once per pass; the previous pass's object when the
  // content is the same.
  std::shared_ptr<const PoolBase> Base(const ServiceInfo& service) {
    std::string key = service.meta.Key();
    if (auto cached = next_->pools.find(key); cached != next_->pools.end()) return cached->second;
    const PoolSettings& settings = Settings(service);
    auto base = std::make_shared<PoolBase>();
    base->write_policy = settings.write_policy;
    base->warmup = settings.warmup;
    base->primary = Members(service);
    if (!settings.backup.empty()) {
      auto backup = view_.services.find(settings.backup);
      if (backup == view_.services.end()) {
        Error("Service", key, ErrorReason::kUnknownBackupPool,
              std::string(kBackupPoolAnnotation) + ": no Service " + settings.backup + "; serving without a backup");
      } else if (!AllowsNamespace(backup->second, service.meta.ns)) {
        Error("Service", key, ErrorReason::kPoolNotAllowed,
              std::string(kBackupPoolAnnotation) + ": Service " + settings.backup + " does not allow namespace " +
                  service.meta.ns + " (" + std::string(kAllowFromAnnotation) + "); serving without a backup");
      } else {
        base->backup = Members(backup->second);
      }
    }
    std::shared_ptr<const PoolBase> out = base;
    if (auto prev = previous_.pools.find(key); prev != previous_.pools.end() && *prev->second == *base) {
      out = prev->second;
    }
    next_->pools.emplace(key, out);
    return out;
  }

  // The bases of one pod's pools, in `refs` order. Errors are reported; nullopt when the pod cannot get a topology.
  std::optional<std::vector<std::shared_ptr<const PoolBase>>> Bases(const PodInfo& pod,
                                                                    const std::vector<PoolRef>& refs) {
    std::vector<std::shared_ptr<const PoolBase>> bases;
    bool ok = true;
    for (const PoolRef& ref : refs) {
      auto svc = view_.services.find(ref.service);
      if (svc == view_.services.end()) {
        Error("Pod", pod.meta.Key(), ErrorReason::kUnknownPool,
              std::string(kPoolsAnnotation) + ": no Service " + ref.service);
        ok = false;
        continue;
      }
      // A pool in another namespace is that namespace's to share: its members' addresses go to this pod, and this
      // pod's writes go to its members.
      if (!AllowsNamespace(svc->second, pod.meta.ns)) {
        Error("Pod", pod.meta.Key(), ErrorReason::kPoolNotAllowed,
              std::string(kPoolsAnnotation) + ": Service " + ref.service + " does not allow namespace " +
                  pod.meta.ns + " (annotate it " + std::string(kAllowFromAnnotation) + ": " + pod.meta.ns + ")");
        ok = false;
        continue;
      }
      std::shared_ptr<const PoolBase> base = Base(svc->second);
      if (base->primary.empty()) {
        Error("Pod", pod.meta.Key(), ErrorReason::kEmptyPool,
              "pool " + ref.service + " has no member: its Service selects no pod with an IP");
        ok = false;
        continue;
      }
      bases.push_back(std::move(base));
    }
    if (!ok) return std::nullopt;
    return bases;
  }

  // `socket_namespace`: the pod's namespace when it asked for unix sockets (memha.io/socket), else empty.
  std::vector<PoolSpec> BuildPools(const std::vector<PoolRef>& refs,
                                   const std::vector<std::shared_ptr<const PoolBase>>& bases,
                                   std::string_view socket_namespace = {}) const {
    std::vector<PoolSpec> pools;
    pools.reserve(refs.size());
    for (size_t i = 0; i < refs.size(); ++i) {
      PoolSpec p;
      p.name = refs[i].service;
      p.listen_endpoint = HostPort{options_.listen_host, refs[i].local_port};
      p.listen = p.listen_endpoint.ToString();
      if (!socket_namespace.empty()) p.listen_unix = SocketPath(refs[i].service, socket_namespace);
      p.write_policy = bases[i]->write_policy;
      p.warmup = bases[i]->warmup;
      p.primary = bases[i]->primary;
      p.backup = bases[i]->backup;
      pools.push_back(std::move(p));
    }
    return pools;
  }

 private:
  const model::StoreView& view_;
  const Options& options_;
  const State& previous_;
  Clock::time_point now_;
  State* next_;
  std::vector<TopologyError>* errors_;
  std::map<std::string, std::vector<MemberSpec>> members_;
  std::set<TopologyError> reported_;
};

}  // namespace

const model::ServicePort* MemcachedPort(const model::ServiceInfo& service) {
  for (const model::ServicePort& p : service.ports) {
    if (p.name == "memcache" || p.name == "memcached") return &p;
  }
  return service.ports.empty() ? nullptr : &service.ports.front();
}

int ResolveTargetPort(const model::ServicePort& port, const model::PodInfo& pod) {
  if (port.target_port > 0) return port.target_port;
  if (!port.target_port_name.empty()) {
    for (const model::ContainerPort& cp : pod.ports) {
      if (cp.name == port.target_port_name) return cp.port;
    }
    return 0;
  }
  return port.port;
}

MemberState PodMemberState(const model::PodInfo& pod) {
  if (pod.meta.deleting) return MemberState::kTerminating;
  if (pod.ready && pod.phase == "Running" && !pod.pod_ip.empty()) return MemberState::kUp;
  return MemberState::kDown;
}

ComputeResult ComputeTopologies(const model::StoreView& view, const Options& options, uint64_t epoch,
                                const State& previous, Clock::time_point now) {
  ComputeResult result;
  State& next = result.state;
  next.epoch = epoch;
  next.version = previous.version;
  Pass pass(view, options, previous, now, &next, &result.errors);

  struct Built {
    SidecarTopology sidecar;
    std::vector<PoolSpec> pools;  // content to stamp, when not reusing the previous topology object
    bool reuse = false;
  };
  std::vector<Built> built;
  bool any_change = false;

  for (const auto& [key, pod] : view.pods) {
    const std::string* annotation = Annotation(pod.meta, kPoolsAnnotation);
    if (annotation == nullptr) continue;
    if (pod.phase == "Succeeded" || pod.phase == "Failed") continue;  // no sidecar runs there any more
    const SidecarTopology* prev = nullptr;
    if (auto it = previous.sidecars.find(key); it != previous.sidecars.end()) prev = &it->second;

    Built b;
    b.sidecar.pod = key;
    b.sidecar.has_sidecar = pod.has_sidecar;
    if (!pod.pod_ip.empty()) b.sidecar.admin_address = Address(pod.pod_ip, options.sidecar_admin_port);

    auto refs = ParsePoolsAnnotation(*annotation, pod.meta.ns,
                                     {.default_port = options.default_local_port,
                                      .admin_port = options.sidecar_admin_port});
    if (refs.ok()) {
      b.sidecar.refs = refs.value();
    } else {
      ErrorReason reason = refs.status().code() == Status::Code::kConflict ? ErrorReason::kDuplicateLocalPort
                                                                           : ErrorReason::kBadPoolsAnnotation;
      pass.Error("Pod", key, reason, std::string(kPoolsAnnotation) + ": " + refs.status().message() +
                                         (prev != nullptr ? "; keeping the last good pools" : ""));
      if (prev == nullptr) continue;
      b.sidecar.refs = prev->refs;  // keep following the last good pools' members
    }

    // Unix sockets where the pod asks for them and has the volume the webhook mounts for them (annotated after
    // its creation, it has none: its sidecar could not bind there, so it stays on TCP alone).
    if (const std::string* socket = Annotation(pod.meta, kSocketAnnotation)) {
      auto on = ParseSocketAnnotation(*socket);
      if (!on.ok()) {
        pass.Error("Pod", key, ErrorReason::kBadSocket, std::string(kSocketAnnotation) + ": " +
                                                             on.status().message() + "; " +
                                                             (pod.has_socket_volume ? "on" : "off") +
                                                             " as the pod's volumes say");
      }
      b.sidecar.socket = on.ok() ? on.value() && pod.has_socket_volume : pod.has_socket_volume;
    }

    auto bases = pass.Bases(pod, b.sidecar.refs);
    if (bases && prev != nullptr && !prev->stale && prev->topology->epoch == epoch && prev->refs == b.sidecar.refs &&
        prev->bases == *bases && prev->socket == b.sidecar.socket) {
      // Same pools from the same (pointer-identical) bases: nothing to build, same generation.
      b.sidecar.bases = std::move(*bases);
      b.sidecar.topology = prev->topology;
      b.sidecar.stale = !refs.ok();
      b.reuse = true;
      built.push_back(std::move(b));
      continue;
    }
    std::optional<std::vector<PoolSpec>> pools;
    if (bases) {
      Topology candidate;
      candidate.pools = pass.BuildPools(b.sidecar.refs, *bases, b.sidecar.socket ? std::string_view(pod.meta.ns)
                                                                                  : std::string_view());
      if (Status s = ValidateTopology(candidate); !s.ok()) {
        pass.Error("Pod", key, ErrorReason::kInvalidTopology, s.message());
      } else {
        pools = std::move(candidate.pools);
        b.sidecar.bases = std::move(*bases);
      }
    }
    if (!pools) {
      if (prev == nullptr) continue;  // never had a good topology: nothing to serve
      b.sidecar.stale = true;
      b.sidecar.refs = prev->refs;
      b.sidecar.socket = prev->socket;
      b.sidecar.bases.clear();
      pools = prev->topology->pools;  // the last good topology, unchanged
    }
    b.sidecar.stale = b.sidecar.stale || !refs.ok();
    if (prev != nullptr && prev->topology->epoch == epoch && prev->topology->pools == *pools) {
      b.sidecar.topology = prev->topology;  // nothing changed: same generation, idempotent push
      b.reuse = true;
    } else {
      b.pools = std::move(*pools);
      any_change = true;
    }
    built.push_back(std::move(b));
  }

  // One new version per pass that changed anything: every pod changed in this pass gets the same one.
  if (any_change) ++next.version;
  for (Built& b : built) {
    if (!b.reuse) {
      auto t = std::make_shared<Topology>();
      t->epoch = epoch;
      t->version = next.version;
      t->pools = std::move(b.pools);
      b.sidecar.topology = std::move(t);
    }
    std::string key = b.sidecar.pod;
    next.sidecars.emplace(std::move(key), std::move(b.sidecar));
  }
  return result;
}

std::string_view ToString(ErrorReason reason) {
  switch (reason) {
    case ErrorReason::kBadPoolsAnnotation: return "BadPoolsAnnotation";
    case ErrorReason::kDuplicateLocalPort: return "DuplicateLocalPort";
    case ErrorReason::kUnknownPool: return "UnknownPool";
    case ErrorReason::kEmptyPool: return "EmptyPool";
    case ErrorReason::kNoMemcachedPort: return "NoMemcachedPort";
    case ErrorReason::kBadWritePolicy: return "BadWritePolicy";
    case ErrorReason::kBadWarmup: return "BadWarmup";
    case ErrorReason::kBadSocket: return "BadSocketAnnotation";
    case ErrorReason::kBadBackupPool: return "BadBackupPool";
    case ErrorReason::kUnknownBackupPool: return "UnknownBackupPool";
    case ErrorReason::kPoolNotAllowed: return "PoolNotAllowed";
    case ErrorReason::kInvalidTopology: return "InvalidTopology";
    case ErrorReason::kCount: break;
  }
  return "Unknown";
}

}  // namespace memha::topology
