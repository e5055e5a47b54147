#include "controller/app/controller.h"

#include <unistd.h>

#include <cstdlib>

#include "common/log.h"
#include "controller/webhook/certificates.h"

namespace memha::app {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// The pools with a backup, as the reconciler computed them: what the refill manager watches.
std::vector<refill::PoolPair> PoolPairs(const topology::State& state) {
  std::vector<refill::PoolPair> pairs;
  for (const auto& [service, base] : state.pools) {
    auto settings = state.settings.find(service);
    if (base->backup.empty() || settings == state.settings.end()) continue;
    pairs.push_back({service, settings->second.backup, base->primary, base->backup});
  }
  return pairs;
}

}  // namespace

Controller::Controller(ControllerFlags flags) : flags_(std::move(flags)) {}

Controller::~Controller() { Shutdown(); }

Status Controller::Start() {
  auto config = kube::LoadConfig(flags_.kubeconfig);
  if (!config.ok()) return config.status();
  config_ = config.value();
  if (flags_.ns.empty()) flags_.ns = Env("POD_NAMESPACE");
  if (flags_.ns.empty()) flags_.ns = Env("MEMHA_NAMESPACE");
  if (flags_.ns.empty()) flags_.ns = config_.default_namespace;
  if (flags_.ns.empty()) flags_.ns = "default";
  if (flags_.identity.empty()) flags_.identity = Env("POD_NAME");
  if (flags_.identity.empty()) flags_.identity = Env("MEMHA_POD_NAME");
  if (flags_.identity.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0) flags_.identity = host;
  }
  if (flags_.identity.empty()) return Status::InvalidArgument("--identity is required (no POD_NAME, no hostname)");
  if (Status s = flags_.webhook.Finish(flags_.ns); !s.ok()) return s;
  MEMHA_LOG(kInfo, "controller", "starting api=" << config_.server << " config=" << config_.source
                                                 << " namespace=" << flags_.ns << " identity=" << flags_.identity);

  // One API client per long stream (Cancel() stops that client's streams), one for requests.
  for (auto* api : {&pods_api_, &services_api_, &lease_api_, &api_}) {
    auto created = kube::HttpKubeApi::Create(config_);
    if (!created.ok()) return created.status();
    *api = std::move(created).value();
  }

  // Push signing keys: every replica reads the same Secret (the first one creates it) or file, so pushes from
  // whichever replica leads verify with the keys the webhook injected.
  if (!flags_.webhook.signing_key_file.empty() || !flags_.webhook.signing_secret.empty()) {
    if (Status s = ReloadSigningKeys(); !s.ok()) return Status::Unavailable("push signing keys: " + s.message());
  }

  push::PusherOptions push_options;
  push_options.signer = signer_.get();
  // A signed epoch reset only when the Lease, read now, says this replica leads and no leader ever had the epoch the
  // sidecar holds (leaseTransitions is the epoch and only grows): an old leader's late push never resets a newer one.
  push_options.confirm_reset = [this](uint64_t held_epoch) {
    auto got = api_->Request("GET", "/apis/coordination.k8s.io/v1/namespaces/" + flags_.ns + "/leases/" +
                                        flags_.lease_name);
    if (!got.ok() || got.value().status != 200) return false;
    try {
      leader::LeaseRecord lease = leader::ParseLease(nlohmann::json::parse(got.value().body));
      return lease.holder == flags_.identity && lease.transitions >= 0 &&
             static_cast<uint64_t>(lease.transitions) < held_epoch;
    } catch (const std::exception&) {
      return false;
    }
  };
  push_options.parallelism = flags_.push_parallelism;
  push_options.resync = flags_.resync;
  push_options.request_timeout = flags_.push_timeout;
  push_options.connect_timeout = flags_.push_timeout;
  if (Status s = push_options.Validate(); !s.ok()) return s;
  pusher_ = std::make_unique<push::TopologyPusher>(push_options, &metrics_);

  events_ = std::make_unique<kube::EventRecorder>(*api_, "memha-controller", flags_.identity);
  // Bulk refill (leader only): Events on the pool's primary Service.
  auto service_event = [this](const std::string& service, bool warning, const std::string& reason,
                               const std::string& message) { ServiceEvent(service, warning, reason, message); };
  refill_ = std::make_unique<refill::RefillManager>(flags_.refill, refill::ProbeStats, service_event);
  // Pool status (leader only): the memha-status ConfigMap and Events on pool Services.
  status::WriterOptions status_options;
  status_options.ns = flags_.ns;
  status_options.config_map = flags_.status_config_map;
  status_ = std::make_unique<status::StatusWriter>(
      *api_, status_options, service_event, [this] { return refill_->Status(); },
      [this](const std::string& pod) -> std::optional<bool> {
        auto sidecar = pusher_->Sidecar(pod);
        if (!sidecar) return std::nullopt;
        return sidecar->UpToDate();
      });
  ReconcileOptions reconcile;
  reconcile.topology.sidecar_admin_port = flags_.sidecar_admin_port;
  reconcile.topology.member_grace = flags_.member_grace;
  if (flags_.refill.enabled) reconcile.refill_marks = [this] { return refill_->Marks(); };
  reconcile.on_pass = [this](const topology::State& state, bool leading) {
    if (flags_.refill.enabled) {
      refill_->UpdatePools(PoolPairs(state));
      refill_->SetLeading(leading);
    }
    status_->Update(std::make_shared<const topology::State>(state), leading);
  };
  reconciler_ = std::make_unique<Reconciler>(
      store_, *pusher_, &metrics_, reconcile, [this](const topology::TopologyError& e, const std::string& uid) {
        std::string ns = e.object.substr(0, e.object.find('/'));
        std::string name = e.object.substr(e.object.find('/') + 1);
        Status s = events_->Record({e.kind, ns, name, uid}, kube::EventType::kWarning,
                                   topology::ToString(e.reason), e.message);
        if (!s.ok()) MEMHA_LOG(kWarn, "controller", "cannot record Event on " << e.object << ": " << s.message());
      });

  admin::AdminHooks hooks;
  hooks.synced = [this] { return store_.Synced(); };
  hooks.topology = [this](const std::string& pod) { return reconciler_->TopologyJson(pod); };
  hooks.metrics = [this] { return metrics_.Serialize(); };
  // A sidecar's boot fetch presents its pod's projected ServiceAccount token: the API server says which pod.
  token_reviewer_ = std::make_unique<kube::PodTokenReviewer>(*api_, kube::PodTokenReviewer::Options{});
  hooks.authenticate = [this](const std::string& token) -> Result<admin::Caller> {
    kube::ReviewFailure failure{};
    auto id = token_reviewer_->Review(token, &failure);
    if (!id.ok()) {
      MEMHA_LOG(kInfo, "controller", "topology read refused: " << id.status().message());
      return failure == kube::ReviewFailure::kUnavailable ? Status::Unavailable(id.status().message())
                                                          : Status::InvalidArgument(id.status().message());
    }
    return admin::Caller{id.value().Pod(), id.value().uid};
  };
  hooks.pod_uid = [this](const std::string& pod) {
    std::string uid;
    store_.Read([&](const model::StoreView& view) {
      if (auto it = view.pods.find(pod); it != view.pods.end()) uid = it->second.meta.uid;
    });
    return uid;
  };
  admin_ = std::make_unique<admin::AdminServer>(admin::AdminServer::Options{flags_.admin_address, flags_.admin_port},
                                                std::move(hooks));
  if (Status s = admin_->Start(); !s.ok()) return s;

  if (flags_.webhook.enabled) {
    if (Status s = StartWebhook(); !s.ok()) return s;
  }

  pod_watcher_ = watch::NewPodWatcher(*pods_api_, store_, watch::WatchOptions{.list_path = "/api/v1/pods",
                                                                               .kind = "pods"});
  service_watcher_ = watch::NewServiceWatcher(
      *services_api_, store_, watch::WatchOptions{.list_path = "/api/v1/services", .kind = "services"});
  threads_.emplace_back([this] { pod_watcher_->Run(); });
  threads_.emplace_back([this] { service_watcher_->Run(); });
  reconciler_->Start();
  refill_->SetOnMarksChanged([this] { reconciler_->Poke(); });
  refill_->Start();
  status_->Start();

  leader::LeaseOptions lease;
  lease.ns = flags_.ns;
  lease.name = flags_.lease_name;
  lease.identity = flags_.identity;
  lease.lease_duration = flags_.lease_duration;
  lease.renew_deadline = flags_.renew_deadline;
  lease.retry_period = flags_.retry_period;
  if (Status s = lease.Validate(); !s.ok()) return s;
  leader::LeaderCallbacks callbacks;
  callbacks.on_started_leading = [this](uint64_t epoch) { reconciler_->StartLeading(epoch); };
  callbacks.on_stopped_leading = [this] {
    refill_->SetLeading(false);
    reconciler_->StopLeading();
  };
  callbacks.on_new_leader = [](const std::string& holder) {
    MEMHA_LOG(kInfo, "controller", "leader is " << (holder.empty() ? "nobody" : holder));
  };
  elector_ = std::make_unique<leader::LeaderElector>(*lease_api_, lease, callbacks);
  threads_.emplace_back([this] { elector_->Run(); });

  threads_.emplace_back([this] {
    std::unique_lock lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, flags_.keys_refresh, [this] { return stopping_; })) {
      lock.unlock();
      if (signer_) {
        if (Status s = ReloadSigningKeys(); !s.ok()) {
          MEMHA_LOG(kWarn, "controller", "push signing keys not re-read, keeping the last good: " << s.message());
        }
      }
      lock.lock();
    }
  });
  RegisterMetrics();
  return Status::Ok();
}

Status Controller::StartWebhook() {
  auto certificates = std::make_shared<webhook::CertificateBootstrap>(*api_, flags_.webhook.certificates);
  // What the Secret holds; only a missing or unusable one is made here (any replica: none leads yet, and the API
  // server cannot call a webhook without it). Renewal and the caBundle are the leader's (WebhookCaSync).
  auto tls = certificates->LoadAtStart();
  if (!tls.ok()) return Status::Unavailable("webhook certificate: " + tls.status().message());
  webhook_ = std::make_unique<webhook::WebhookServer>(flags_.webhook.server, tls.value(), flags_.webhook.inject);
  if (signer_) webhook_->SetPushPublicKeys([this] { return signing_keys_.PublicKeys(); });
  // A selected pod created without the sidecar: a Warning Event on its owner (a ReplicaSet: the pod has no name
  // yet), else on the pod by name, besides the admission warning kubectl prints.
  webhook_->SetNotInjectedSink([this](const webhook::AdmissionResult& r) {
    kube::ObjectRef ref = r.owner_name.empty()
                              ? kube::ObjectRef{"Pod", r.pod_namespace, r.pod_name, ""}
                              : kube::ObjectRef{r.owner_kind, r.pod_namespace, r.owner_name, "", r.owner_api_version};
    if (ref.name.empty()) return;
    if (Status s = events_->Record(ref, kube::EventType::kWarning, "SidecarNotInjected", r.reason); !s.ok()) {
      MEMHA_LOG(kWarn, "controller", "cannot record Event on " << ref.kind << " " << ref.name << ": " << s.message());
    }
  });
  if (Status s = webhook_->Start(); !s.ok()) return s;
  // One writer of the CA: every 15 s the leader reconciles the Secret and the caBundle (a re-applied manifest
  // blanks it; a missing configuration is not fatal), and every replica serves what the Secret holds.
  auto ca_sync = std::make_shared<webhook::WebhookCaSync>(
      *certificates, webhook::WebhookCaSync::Hooks{
                         [this] { return reconciler_->Leading(); }, [this] { return webhook_->Serving(); },
                         [this](const webhook::ServingCertificate& t) { return webhook_->Reload(t); }});
  threads_.emplace_back([this, certificates, ca_sync] {
    std::unique_lock lock(stop_mu_);
    do {
      lock.unlock();
      if (Status s = ca_sync->Once(); !s.ok()) {
        MEMHA_LOG(kWarn, "controller", "webhook certificate/caBundle: " << s.message() << " (retrying)");
      }
      lock.lock();
    } while (!stop_cv_.wait_for(lock, std::chrono::seconds(15), [this] { return stopping_; }));
  });
  return Status::Ok();
}

Status Controller::ReloadSigningKeys() {
  auto keys = !flags_.webhook.signing_key_file.empty()
                  ? webhook::LoadSigningKeysFile(flags_.webhook.signing_key_file)
                  : webhook::LoadOrCreateSigningKeys(*api_, flags_.ns, flags_.webhook.signing_secret);
  if (!keys.ok()) return keys.status();
  if (keys.value() == signing_keys_.Get()) return Status::Ok();
  bool first = !signer_;
  signing_keys_.Set(keys.value());
  if (first) {
    signer_ = std::make_unique<crypto::PushSigner>(keys.value().current);
  } else {
    signer_->SetKey(keys.value().current);
  }
  MEMHA_LOG(kInfo, "controller", (first ? "push signing keys loaded" : "push signing keys rotated")
                                     << " public=" << keys.value().PublicKeys().front()
                                     << (keys.value().next.empty() ? "" : " next=" + keys.value().PublicKeys().back()));
  return Status::Ok();
}

void Controller::ServiceEvent(const std::string& service, bool warning, const std::string& reason,
                              const std::string& message) {
  std::string uid;
  store_.Read([&](const model::StoreView& view) {
    if (auto it = view.services.find(service); it != view.services.end()) uid = it->second.meta.uid;
  });
  std::string ns = service.substr(0, service.find('/'));
  std::string name = service.substr(service.find('/') + 1);
  Status s = events_->Record({"Service", ns, name, uid}, warning ? kube::EventType::kWarning : kube::EventType::kNormal,
                             reason, message);
  if (!s.ok()) MEMHA_LOG(kWarn, "controller", "cannot record Event on " << service << ": " << s.message());
}

void Controller::RegisterRefillMetrics() {
  const refill::RefillCounters* c = &refill_->counters();
  const std::pair<const char*, const std::atomic<uint64_t>*> keys[] = {
      {"copied", &c->copied},   {"present", &c->present}, {"missing", &c->missing},
      {"expiring", &c->expiring}, {"unsettled", &c->unsettled}, {"undone", &c->undone},
      {"error", &c->key_errors}, {"suspect_kept", &c->kept}, {"suspect_dropped", &c->dropped}};
  for (const auto& [result, counter] : keys) {
    metrics_.AddCounterCallback("memha_controller_refill_keys_total",
                                "Keys the refill handled: copied, present on the target (add refused), missing on "
                                "the peer, expiring, unsettled (a placeholder or stale item on the peer), undone "
                                "(changed on the peer after the copy), error; handovers: suspect_kept/suspect_dropped "
                                "(a moved key's copy from before the ring change, equal to the peer's / deleted)",
                                {{"result", result}}, [counter] { return double(counter->load()); });
  }
  for (const char* phase : {"Healthy", "Refilling", "Degraded", "Unavailable"}) {
    metrics_.AddGaugeCallback("memha_controller_pools", "Pools by phase (leader only; docs/OPERATIONS.md \"Pool status\")",
                              {{"phase", phase}}, [this, phase] { return double(status_->Pools(phase)); });
  }
  metrics_.AddCounterCallback("memha_controller_status_writes_total", "Writes of the memha-status ConfigMap",
                              {{"result", "ok"}}, [this] { return double(status_->Writes()); });
  metrics_.AddCounterCallback("memha_controller_status_writes_total", "Writes of the memha-status ConfigMap",
                              {{"result", "failed"}}, [this] { return double(status_->Failures()); });
  metrics_.AddCounterCallback("memha_controller_refill_handovers_total",
                              "Handover jobs created: ring changes x members that gained keys", {},
                              [this] { return double(refill_->Handovers()); });
  metrics_.AddCounterCallback("memha_controller_refill_bytes_total", "Value bytes the refill stored", {},
                              [c] { return double(c->bytes.load()); });
  metrics_.AddCounterCallback("memha_controller_refill_dumped_keys_total", "lru_crawler metadump records read", {},
                              [c] { return double(c->dumped.load()); });
  metrics_.AddCounterCallback("memha_controller_refill_dump_bad_lines_total",
                              "metadump lines that were not records (skipped)", {},
                              [c] { return double(c->bad_lines.load()); });
  for (auto outcome : {refill::RefillOutcome::kDone, refill::RefillOutcome::kAbandoned, refill::RefillOutcome::kFailed}) {
    metrics_.AddCounterCallback("memha_controller_refill_runs_total", "Refill runs by outcome",
                                {{"outcome", std::string(refill::ToString(outcome))}},
                                [this, outcome] { return double(refill_->Runs(outcome)); });
  }
  for (auto state : {refill::TargetState::kPending, refill::TargetState::kRunning, refill::TargetState::kDone,
                     refill::TargetState::kFailed}) {
    metrics_.AddGaugeCallback("memha_controller_refill_targets", "Members by refill state (leader only)",
                              {{"state", std::string(refill::ToString(state))}},
                              [this, state] { return double(refill_->Targets(state)); });
  }
  metrics_.AddGaugeCallback("memha_controller_refill_running_keys",
                            "The running refill: keys owned by its target on the peers dumped so far", {},
                            [this] { return double(refill_->RunningProgress().first); });
  metrics_.AddGaugeCallback("memha_controller_refill_running_processed_keys",
                            "The running refill: keys handled so far", {},
                            [this] { return double(refill_->RunningProgress().second); });
}

void Controller::RegisterMetrics() {
  RegisterRefillMetrics();
  for (auto [kind, w] : {std::pair{"pods", pod_watcher_.get()}, std::pair{"services", service_watcher_.get()}}) {
    const watch::WatchCounters* c = &w->counters();
    admin::ControllerMetrics::Labels l{{"kind", kind}};
    metrics_.AddCounterCallback("memha_controller_watch_restarts_total", "Watch requests re-opened after the first",
                                l, [c] { return double(c->watch_restarts.load()); });
    metrics_.AddCounterCallback("memha_controller_relists_total", "Full lists after the first (410 Gone, errors)", l,
                                [c] { return double(c->relists.load()); });
    metrics_.AddCounterCallback("memha_controller_watch_events_total", "Watch events applied to the cache", l,
                                [c] { return double(c->events.load()); });
    metrics_.AddCounterCallback("memha_controller_watch_errors_total",
                                "Transport errors, error answers and undecodable events", l,
                                [c] { return double(c->errors.load()); });
    metrics_.AddGaugeCallback("memha_controller_watch_synced", "1 once the first full list is in the cache", l,
                              [c] { return c->synced.load() ? 1.0 : 0.0; });
  }
  metrics_.AddGaugeCallback("memha_controller_cache_objects", "Objects in the cache", {{"kind", "pods"}},
                            [this] { return double(store_.PodCount()); });
  metrics_.AddGaugeCallback("memha_controller_cache_objects", "Objects in the cache", {{"kind", "services"}},
                            [this] { return double(store_.ServiceCount()); });
  metrics_.AddCounterCallback("memha_controller_pod_changes_ignored_total",
                              "Pod changes stored without a reconcile pass: not in a pool in use, no memha.io/pools",
                              {}, [this] { return double(store_.IgnoredPodChanges()); });
  metrics_.AddGaugeCallback("memha_controller_leader", "1 while this replica leads (and pushes)", {},
                            [this] { return elector_->IsLeader() ? 1.0 : 0.0; });
  metrics_.AddGaugeCallback("memha_controller_epoch", "The epoch this replica leads with (0: not leading)", {},
                            [this] { return double(reconciler_->Epoch()); });
  const leader::LeaderCounters* lc = &elector_->counters();
  metrics_.AddCounterCallback("memha_controller_leader_acquisitions_total", "Times this replica started leading", {},
                              [lc] { return double(lc->acquisitions.load()); });
  metrics_.AddGaugeCallback("memha_controller_sidecars", "Application pods with a topology", {},
                            [this] { return double(reconciler_->Sidecars()); });
  metrics_.AddGaugeCallback("memha_controller_pods_without_sidecar",
                            "Pods with memha.io/pools but no memha-sidecar container: served on GET, not pushed", {},
                            [this] { return double(reconciler_->PodsWithoutSidecar()); });
  metrics_.AddGaugeCallback("memha_controller_sidecars_behind",
                            "Sidecars whose acknowledged topology is not the desired one (leader only)", {},
                            [this] { return double(pusher_->Behind()); });
}

void Controller::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  MEMHA_LOG(kInfo, "controller", "shutting down");
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (elector_) elector_->Stop();  // its thread releases the Lease (stops pushing first), then exits
  if (pod_watcher_) pod_watcher_->Stop();
  if (service_watcher_) service_watcher_->Stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (status_) status_->Stop();
  if (refill_) refill_->Stop();
  if (reconciler_) {
    reconciler_->Stop();
    reconciler_->StopLeading();
  }
  if (webhook_) webhook_->Stop();
  if (admin_) admin_->Stop();
  MEMHA_LOG(kInfo, "controller", "stopped");
}

}  // namespace memha::app
