#include "sidecar/admin/bootstrap.h"

#include <httplib.h>

#include <cctype>
#include <fstream>
#include <random>
#include <sstream>

#include "common/log.h"

namespace memha {
namespace {

bool ReadTokenFile(const std::string& path, std::string* token) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  if (t.empty()) return false;
  *token = std::move(t);
  return true;
}

}  // namespace

TopologyBootstrap::TopologyBootstrap(Options options, std::function<Status(const Topology&)> offer,
                                     std::function<bool()> has_topology)
    : options_(std::move(options)), offer_(std::move(offer)), has_topology_(std::move(has_topology)) {}

TopologyBootstrap::~TopologyBootstrap() { Stop(); }

void TopologyBootstrap::Start() { thread_ = std::thread([this] { Run(); }); }

void TopologyBootstrap::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool TopologyBootstrap::FetchOnce() {
  ++attempts_;
  try {
    httplib::Client client(options_.controller_url);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(5));
    std::string token;
    if (!ReadTokenFile(options_.token_file, &token)) {
      MEMHA_LOG(kWarn, "bootstrap", "no token in " << options_.token_file << " yet (the kubelet writes it)");
      return false;
    }
    client.set_bearer_token_auth(token);
    std::string path = "/v1/topology?pod=" + httplib::detail::encode_query_param(options_.pod);
    auto res = client.Get(path);
    if (!res) {
      MEMHA_LOG(kWarn, "bootstrap", "GET " << options_.controller_url << path << ": "
                                            << httplib::to_string(res.error()));
      return false;
    }
    if (res->status == 404) {
      MEMHA_LOG(kInfo, "bootstrap", "controller has no topology for pod " << options_.pod << " yet");
      return true;
    }
    if (res->status != 200) {
      MEMHA_LOG(kWarn, "bootstrap", "GET topology: HTTP " << res->status << ": " << res->body.substr(0, 200));
      return false;
    }
    auto topology = ParseTopology(res->body);
    if (!topology.ok()) {
      MEMHA_LOG(kError, "bootstrap", "controller sent an invalid topology: " << topology.status().message());
      return false;
    }
    Status s = offer_(topology.value());
    if (s.ok()) {
      fetched_ = true;
      MEMHA_LOG(kInfo, "bootstrap", "topology from controller applied epoch=" << topology.value().epoch
                                                                         << " version=" << topology.value().version);
    } else if (s.code() == Status::Code::kConflict) {
      MEMHA_LOG(kInfo, "bootstrap", "a newer topology is already held: " << s.message());
    } else {
      MEMHA_LOG(kError, "bootstrap", "fetched topology not applied: " << s.message());
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    MEMHA_LOG(kError, "bootstrap", "GET topology: " << e.what());
    return false;
  }
}

// Until a topology is held: one held from the state file or a push ends the loop after this attempt, since
// the controller pushes (and re-pushes periodically) anyway.
void TopologyBootstrap::Run() {
  std::mt19937 rng(std::random_device{}());
  auto wait = options_.first_retry;
  for (;;) {
    FetchOnce();
    if (fetched_ || has_topology_()) return;
    std::uniform_int_distribution<int64_t> jitter(0, wait.count() / 2);
    auto sleep = wait + std::chrono::milliseconds(jitter(rng));
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, sleep, [this] { return stop_; })) return;
    lock.unlock();
    if (has_topology_()) return;  // pushed meanwhile
    wait = std::min(wait * 2, options_.max_retry);
  }
}

}  // namespace memha
