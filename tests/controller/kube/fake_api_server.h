#pragma once
// A scripted Kubernetes API server on 127.0.0.1, port 0 (cpp-httplib). Each request pops the next scripted
// answer for its key ("GET /api/v1/pods", "WATCH /api/v1/pods", "PUT ..."); bodies given as `chunks` are sent
// with chunked transfer encoding, one HTTP chunk per element, so a test controls exactly how a watch stream is
// cut. Unscripted requests get 599 so a test notices them.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace memha::testing {

struct Scripted {
  int status = 200;
  std::multimap<std::string, std::string> headers;
  std::string body;                 // sent whole (Content-Length) when `chunks` is empty and !chunked
  std::vector<std::string> chunks;  // one HTTP chunk each
  bool chunked = false;             // force chunked encoding even without chunks (an empty stream)
  bool drop = false;                // after the chunks, close the connection without the last chunk
  bool hang = false;                // after the chunks, send nothing until the server stops
};

struct Recorded {
  std::string key;  // as scripted: "GET /api/v1/pods", "WATCH /api/v1/pods"
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;
  std::string authorization;
  std::string content_type;
  std::string body;
  int status = 0;  // what the server answered
};

class FakeApiServer {
 public:
  FakeApiServer() {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Put(".*", handler);
    server_.Patch(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeApiServer() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void Script(const std::string& key, Scripted answer) {
    std::lock_guard lock(mu_);
    scripts_[key].push_back(std::move(answer));
  }
  // Only requests with "Authorization: Bearer <token>" are served; others get 401.
  void RequireToken(const std::string& token) {
    std::lock_guard lock(mu_);
    token_ = token;
  }
  std::vector<Recorded> Requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<Recorded> Requests(const std::string& key) const {
    std::lock_guard lock(mu_);
    std::vector<Recorded> out;
    for (const auto& r : requests_) if (r.key == key) out.push_back(r);
    return out;
  }
  size_t Pending(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = scripts_.find(key);
    return it == scripts_.end() ? 0 : it->second.size();
  }
  int StreamsInProgress() const { return streams_in_progress_.load(); }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    Recorded rec;
    rec.method = req.method;
    rec.path = req.path;
    for (const auto& [k, v] : req.params) rec.params[k] = v;
    rec.authorization = req.get_header_value("Authorization");
    rec.content_type = req.get_header_value("Content-Type");
    rec.body = req.body;
    bool watch = req.has_param("watch") && req.get_param_value("watch") != "0" &&
                 req.get_param_value("watch") != "false";
    rec.key = (watch ? std::string("WATCH") : req.method) + " " + req.path;
    Scripted s;
    {
      std::lock_guard lock(mu_);
      if (!token_.empty() && rec.authorization != "Bearer " + token_) {
        s.status = 401;
        s.body = R"({"kind":"Status","code":401,"reason":"Unauthorized"})";
      } else {
        auto& q = scripts_[rec.key];
        if (q.empty()) {
          s.status = 599;
          s.body = "unscripted " + rec.key;
        } else {
          s = std::move(q.front());
          q.pop_front();
        }
      }
      rec.status = s.status;
      requests_.push_back(rec);
    }
    res.status = s.status;
    for (const auto& [k, v] : s.headers) res.set_header(k.c_str(), v);
    if (s.chunks.empty() && !s.chunked && !s.drop && !s.hang) {
      res.set_content(s.body, "application/json");
      return;
    }
    auto chunks = std::make_shared<std::vector<std::string>>(std::move(s.chunks));
    auto next = std::make_shared<size_t>(0);
    bool drop = s.drop;
    bool hang = s.hang;
    streams_in_progress_++;
    res.set_chunked_content_provider(
        "application/json",
        [this, chunks, next, drop, hang](size_t, httplib::DataSink& sink) {
          if (*next < chunks->size()) {
            const std::string& c = (*chunks)[(*next)++];
            return sink.write(c.data(), c.size());
          }
          if (drop) return false;
          while (hang && !stopping_ && sink.is_writable()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
          sink.done();
          return true;
        },
        [this](bool) { streams_in_progress_--; });
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> streams_in_progress_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::deque<Scripted>> scripts_;
  std::vector<Recorded> requests_;
  std::string token_;
};

}  // namespace memha::testing
