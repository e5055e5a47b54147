#pragma once
// A scripted sidecar admin endpoint on 127.0.0.1, port 0: answers PUT /v1/topology like memha-sidecar
// (token, 409 for an older generation, 200 for the same one) or fails, hangs, refuses, or answers slowly.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto/push_signature.h"
#include "common/topology.h"

namespace memha::push {

class FakeSidecar {
 public:
  // kUnauthorized: 401 to everything, as memha-sidecar answers a push whose signature it does not accept.
  enum class Mode { kOk, kFail, kHang, kRefuse, kUnauthorized };

  FakeSidecar() {
    server_.Put("/v1/topology", [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs is lost (httplib 0.11): wait for it.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeSidecar() {
    Release();
    server_.stop();
    thread_.join();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void set_mode(Mode m) { std::lock_guard l(mu_); mode_ = m; }
  void set_delay(std::chrono::milliseconds d) { std::lock_guard l(mu_); delay_ = d; }
  // Signed pushes: verified like memha-sidecar does (a refusal is 401/403), and a signed reset is applied whatever
  // is held; without a verifier the signature headers are ignored.
  void set_verifier(crypto::PushVerifier* v) { std::lock_guard l(mu_); verifier_ = v; }
  // Holds this generation as if it had been applied (a lockout from the future, a state file).
  void hold(const Topology& t) { std::lock_guard l(mu_); current_ = t; have_ = true; }
  int resets() const { std::lock_guard l(mu_); return resets_; }
  uint64_t applied_epoch() const { std::lock_guard l(mu_); return current_.epoch; }
  void fail_next(int n) { std::lock_guard l(mu_); fail_next_ = n; }
  void Release() {
    std::lock_guard l(mu_);
    released_ = true;
    cv_.notify_all();
  }

  // Every request's (version) in arrival order, and the arrival times.
  std::vector<uint64_t> versions() const { std::lock_guard l(mu_); return versions_; }
  std::vector<std::chrono::steady_clock::time_point> times() const { std::lock_guard l(mu_); return times_; }
  int requests() const { std::lock_guard l(mu_); return static_cast<int>(versions_.size()); }
  int in_handler() const { return in_handler_.load(); }
  uint64_t applied_version() const { std::lock_guard l(mu_); return current_.version; }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    ++in_handler_;
    std::unique_lock l(mu_);
    auto topo = ParseTopology(req.body);
    versions_.push_back(topo.ok() ? topo.value().version : 0);
    times_.push_back(std::chrono::steady_clock::now());
    Mode mode = mode_;
    if (fail_next_ > 0) {
      --fail_next_;
      mode = Mode::kFail;
    }
    if (delay_.count() > 0) cv_.wait_for(l, delay_, [&] { return released_; });
    if (mode == Mode::kHang) cv_.wait_for(l, std::chrono::seconds(20), [&] { return released_; });
    --in_handler_;
    bool reset = false;
    std::optional<crypto::PushRefusal> refused;
    if (verifier_ != nullptr) {
      auto header = [&req](const char* name) -> std::optional<std::string> {
        if (!req.has_header(name)) return std::nullopt;
        return req.get_header_value(name);
      };
      crypto::PushRefusal why{};
      auto envelope = verifier_->Verify(header, req.body, &why);
      if (envelope.ok()) {
        reset = envelope.value().reset;
      } else {
        refused = why;
      }
    }
    if (refused) {
      res.status = *refused == crypto::PushRefusal::kWrongPod ? 403 : 401;
      res.set_content("{\"reason\":\"" + std::string(crypto::ToString(*refused)) + "\"}", "application/json");
    } else if (mode == Mode::kUnauthorized) {
      res.status = 401;
      res.set_content("{\"reason\":\"bad_signature\"}", "application/json");
    } else if (mode == Mode::kFail) {
      res.status = 500;
      res.set_content("{\"error\":\"scripted failure\"}", "application/json");
    } else if (mode == Mode::kRefuse || (!reset && topo.ok() && have_ && current_.NewerThan(topo.value()))) {
      res.status = 409;
      res.set_content("{\"error\":\"stale topology\",\"held_epoch\":" + std::to_string(current_.epoch) +
                          ",\"held_version\":" + std::to_string(current_.version) + "}",
                      "application/json");
    } else if (!topo.ok()) {
      res.status = 400;
      res.set_content("{\"error\":\"" + topo.status().message() + "\"}", "application/json");
    } else {
      if (reset && have_ && current_.NewerThan(topo.value())) ++resets_;
      current_ = topo.value();
      have_ = true;
      res.set_content("{\"applied\":true}", "application/json");
    }
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kOk;
  std::chrono::milliseconds delay_{0};
  int fail_next_ = 0;
  bool released_ = false;
  std::atomic<int> in_handler_{0};
  std::vector<uint64_t> versions_;
  std::vector<std::chrono::steady_clock::time_point> times_;
  Topology current_;
  bool have_ = false;
  crypto::PushVerifier* verifier_ = nullptr;
  int resets_ = 0;
};

}  // namespace memha::push
