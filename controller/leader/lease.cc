#include "controller/leader/lease.h"

#include "common/log.h"
#include "controller/kube/events.h"

namespace memha::leader {
namespace {

using nlohmann::json;

std::string Str(const json& o, const char* key) {
  if (!o.is_object()) return "";
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t Int(const json& o, const char* key) {
  if (!o.is_object()) return 0;
  auto it = o.find(key);
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

int64_t Seconds(kube::Duration d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return s > 0 ? s : 1;
}

bool SameRecord(const LeaseRecord& a, const LeaseRecord& b) {
  return a.holder == b.holder && a.renew_time == b.renew_time && a.transitions == b.transitions &&
         a.duration_seconds == b.duration_seconds && a.resource_version == b.resource_version;
}

}  // namespace

Status LeaseOptions::Validate() const {
  if (identity.empty()) return Status::InvalidArgument("leader election: identity is empty");
  if (ns.empty() || name.empty()) return Status::InvalidArgument("leader election: lease namespace/name is empty");
  if (lease_duration <= renew_deadline)
    return Status::InvalidArgument("leader election: lease duration must be greater than the renew deadline");
  if (renew_deadline <= retry_period)
    return Status::InvalidArgument("leader election: renew deadline must be greater than the retry period");
  if (retry_period <= kube::Duration::zero())
    return Status::InvalidArgument("leader election: retry period must be positive");
  return Status::Ok();
}

LeaseRecord ParseLease(const json& lease) {
  LeaseRecord r;
  const json spec = lease.is_object() && lease.contains("spec") ? lease["spec"] : json::object();
  r.holder = Str(spec, "holderIdentity");
  r.duration_seconds = Int(spec, "leaseDurationSeconds");
  r.acquire_time = Str(spec, "acquireTime");
  r.renew_time = Str(spec, "renewTime");
  r.transitions = Int(spec, "leaseTransitions");
  if (lease.is_object() && lease.contains("metadata")) r.resource_version = Str(lease["metadata"], "resourceVersion");
  return r;
}

LeaderElector::LeaderElector(kube::KubeApi& api, LeaseOptions options, LeaderCallbacks callbacks, kube::Clock& clock)
    : api_(api), options_(std::move(options)), callbacks_(std::move(callbacks)), clock_(clock) {}

std::string LeaderElector::LeasePath() const {
  return "/apis/coordination.k8s.io/v1/namespaces/" + options_.ns + "/leases/" + options_.name;
}

std::string LeaderElector::ObservedHolder() const {
  std::lock_guard lock(mu_);
  return observed_.holder;
}

void LeaderElector::Observe(const LeaseRecord& record, kube::SteadyTime now) {
  std::string new_holder;
  bool holder_changed = false;
  {
    std::lock_guard lock(mu_);
    if (have_observed_ && SameRecord(observed_, record)) return;
    holder_changed = !have_observed_ || observed_.holder != record.holder;
    observed_ = record;
    observed_at_ = now;
    have_observed_ = true;
    new_holder = record.holder;
  }
  if (holder_changed) {
    MEMHA_LOG(kInfo, "leader", "lease " << options_.ns << "/" << options_.name << " holder=\"" << new_holder
                                        << "\" transitions=" << record.transitions);
    if (callbacks_.on_new_leader) callbacks_.on_new_leader(new_holder);
  }
}

LeaderElector::Attempt LeaderElector::Create(kube::SteadyTime now, bool* conflict) {
  std::string ts = kube::FormatMicroTime(wall_());
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}},
                {"spec",
                 {{"holderIdentity", options_.identity},
                  {"leaseDurationSeconds", Seconds(options_.lease_duration)},
                  {"acquireTime", ts},
                  {"renewTime", ts},
                  {"leaseTransitions", 1}}}};
  auto r = api_.Request("POST", "/apis/coordination.k8s.io/v1/namespaces/" + options_.ns + "/leases", lease.dump());
  if (!r.ok()) return Attempt::kError;
  if (r.value().status == 409) {
    counters_.conflicts++;
    *conflict = true;  // created by someone else meanwhile: read it
    return Attempt::kError;
  }
  if (r.value().status != 201 && r.value().status != 200) {
    MEMHA_LOG(kWarn, "leader", "creating the lease: HTTP " << r.value().status);
    return Attempt::kError;
  }
  json created = json::parse(r.value().body, nullptr, false);
  LeaseRecord rec = created.is_discarded() ? LeaseRecord{} : ParseLease(created);
  Observe(rec, now);
  pending_epoch_ = static_cast<uint64_t>(rec.transitions > 0 ? rec.transitions : 1);
  return Attempt::kLeading;
}

LeaderElector::Attempt LeaderElector::TryAcquireOrRenew(kube::SteadyTime now) {
  for (int attempt = 0; attempt <= options_.conflict_retries; ++attempt) {
    auto got = api_.Request("GET", LeasePath());
    if (!got.ok()) return Attempt::kError;
    if (got.value().status == 404) {
      bool conflict = false;
      Attempt a = Create(now, &conflict);
      if (conflict) continue;
      return a;
    }
    if (got.value().status != 200) {
      MEMHA_LOG(kWarn, "leader", "reading the lease: HTTP " << got.value().status);
      return Attempt::kError;
    }
    json lease = json::parse(got.value().body, nullptr, false);
    if (lease.is_discarded() || !lease.is_object()) return Attempt::kError;
    LeaseRecord rec = ParseLease(lease);
    Observe(rec, now);
    bool ours = rec.holder == options_.identity;
    if (!rec.holder.empty() && !ours) {
      kube::SteadyTime observed_at;
      {
        std::lock_guard lock(mu_);
        observed_at = observed_at_;
      }
      if (observed_at + std::chrono::seconds(rec.duration_seconds) > now) return Attempt::kHeldByOther;
      MEMHA_LOG(kInfo, "leader", "lease held by \"" << rec.holder << "\" expired (not renewed for "
                                                    << rec.duration_seconds << " s as observed here); taking it");
    }
    // A new leadership (not a renewal) bumps leaseTransitions: that is the epoch.
    bool renewal = ours && leading_.load();
    std::string ts = kube::FormatMicroTime(wall_());
    json& spec = lease["spec"];
    if (!spec.is_object()) spec = json::object();
    spec["holderIdentity"] = options_.identity;
    spec["leaseDurationSeconds"] = Seconds(options_.lease_duration);
    spec["renewTime"] = ts;
    if (!renewal) {
      spec["acquireTime"] = ts;
      spec["leaseTransitions"] = rec.transitions + 1;
    }
    auto put = api_.Request("PUT", LeasePath(), lease.dump());
    if (!put.ok()) return Attempt::kError;
    if (put.value().status == 409) {
      counters_.conflicts++;
      continue;
    }
    if (put.value().status != 200) {
      MEMHA_LOG(kWarn, "leader", "updating the lease: HTTP " << put.value().status);
      return Attempt::kError;
    }
    json updated = json::parse(put.value().body, nullptr, false);
    LeaseRecord now_rec = updated.is_discarded() ? LeaseRecord{} : ParseLease(updated);
    Observe(now_rec, now);
    if (!renewal) pending_epoch_ = static_cast<uint64_t>(now_rec.transitions);
    return Attempt::kLeading;
  }
  return Attempt::kError;  // lost every race this round; try again next period
}

void LeaderElector::StepDown(const char* why) {
  if (!leading_.exchange(false)) return;
  counters_.step_downs++;
  MEMHA_LOG(kWarn, "leader", "stopped leading: " << why);
  if (callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
}

void LeaderElector::Tick() {
  kube::SteadyTime now = clock_.Now();
  Attempt a = TryAcquireOrRenew(now);
  if (a == Attempt::kError) counters_.failed_attempts++;
  if (a == Attempt::kLeading) {
    last_renew_ = now;
    if (!leading_.load()) {
      epoch_ = pending_epoch_;
      leading_ = true;
      counters_.acquisitions++;
      MEMHA_LOG(kInfo, "leader", "started leading lease " << options_.ns << "/" << options_.name
                                                          << " epoch=" << pending_epoch_);
      if (callbacks_.on_started_leading) callbacks_.on_started_leading(pending_epoch_);
    }
    return;
  }
  if (!leading_.load()) return;
  if (a == Attempt::kHeldByOther) return StepDown("the lease is held by another candidate");
  if (now - last_renew_ >= options_.renew_deadline) StepDown("could not renew within the renew deadline");
}

Status LeaderElector::Release() {
  // Also after a step-down at the renew deadline: the Lease may still name us, and handing it back spares the
  // successor the wait for its expiry.
  if (!leading_.load() && ObservedHolder() != options_.identity) return Status::Ok();
  StepDown("released");  // stop pushing before the successor can start
  for (int attempt = 0; attempt <= options_.conflict_retries; ++attempt) {
    auto got = api_.Request("GET", LeasePath());
    if (!got.ok()) return got.status();
    if (got.value().status != 200) return Status::Unavailable("release: HTTP " + std::to_string(got.value().status));
    json lease = json::parse(got.value().body, nullptr, false);
    if (lease.is_discarded() || !lease.is_object()) return Status::Internal("release: lease is not JSON");
    if (ParseLease(lease).holder != options_.identity) return Status::Ok();  // already someone else's
    json& spec = lease["spec"];
    if (!spec.is_object()) spec = json::object();
    spec.erase("holderIdentity");
    spec["leaseDurationSeconds"] = 1;
    spec["renewTime"] = kube::FormatMicroTime(wall_());
    auto put = api_.Request("PUT", LeasePath(), lease.dump());
    if (!put.ok()) return put.status();
    if (put.value().status == 409) {
      counters_.conflicts++;
      continue;
    }
    if (put.value().status != 200) return Status::Unavailable("release: HTTP " + std::to_string(put.value().status));
    MEMHA_LOG(kInfo, "leader", "released lease " << options_.ns << "/" << options_.name);
    return Status::Ok();
  }
  return Status::Conflict("release: lease kept changing");
}

void LeaderElector::Run() {
  while (!stop_.Stopped()) {
    Tick();
    kube::Duration wait = options_.retry_period;
    if (!leading_.load()) {
      std::uniform_real_distribution<double> jitter(0.0, 0.2);
      wait += std::chrono::duration_cast<kube::Duration>(options_.retry_period * jitter(rng_));
    }
    if (clock_.Sleep(wait, stop_)) break;
  }
  Status s = Release();
  if (!s.ok()) MEMHA_LOG(kWarn, "leader", "releasing the lease failed: " << s.message());
}

void LeaderElector::Stop() { stop_.Stop(); }

}  // namespace memha::leader
