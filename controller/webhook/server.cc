#include "controller/webhook/server.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <exception>

#include "common/log.h"

namespace memha::webhook {
namespace {

// Each TLS handshake takes the certificate current at that moment (SSL_CTX_set_cert_cb, per connection): a
// reloaded certificate serves the next handshake, and nothing in the shared SSL_CTX changes while others use it.
int UseCurrentCertificate(SSL* ssl, void* arg) {
  auto current = static_cast<WebhookServer*>(arg)->CurrentKeyPair();
  if (!current) return 0;
  return SSL_use_certificate(ssl, current->cert.get()) == 1 && SSL_use_PrivateKey(ssl, current->key.get()) == 1 ? 1
                                                                                                                : 0;
}

}  // namespace

Result<std::shared_ptr<const WebhookServer::KeyPair>> WebhookServer::ParseKeyPair(const ServingCertificate& tls) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(tls.cert_pem.data(), static_cast<int>(tls.cert_pem.size())), &BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size())), &BIO_free);
  auto pair = std::make_shared<KeyPair>();
  if (cert_bio) pair->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (key_bio) pair->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!pair->cert || !pair->key || X509_check_private_key(pair->cert.get(), pair->key.get()) != 1) {
    return Status::InvalidArgument("webhook TLS certificate or key cannot be used");
  }
  return std::shared_ptr<const KeyPair>(std::move(pair));
}

std::shared_ptr<const WebhookServer::KeyPair> WebhookServer::CurrentKeyPair() const {
  std::lock_guard lock(key_mu_);
  return key_pair_;
}

Status WebhookServer::Reload(const ServingCertificate& tls) {
  auto pair = ParseKeyPair(tls);
  if (!pair.ok()) return pair.status();
  std::lock_guard lock(key_mu_);
  key_pair_ = std::move(pair).value();
  tls_ = tls;
  return Status::Ok();
}

ServingCertificate WebhookServer::Serving() const {
  std::lock_guard lock(key_mu_);
  return tls_;
}


WebhookServer::WebhookServer(Options options, ServingCertificate tls, InjectConfig config,
                             Observer observer)
    : options_(std::move(options)),
      tls_(std::move(tls)),
      config_(std::move(config)),
      observer_(std::move(observer)) {}

WebhookServer::~WebhookServer() { Stop(); }

AdmissionResult WebhookServer::Handle(std::string_view body) {
  AdmissionResult result;
  if (push_public_keys_) {
    InjectConfig config = config_;
    config.push_public_keys = push_public_keys_();
    result = ReviewPod(body, config);
  } else {
    result = ReviewPod(body, config_);
  }
  return result;
}

Status WebhookServer::Start() {
  if (server_) return Status::Internal("webhook server already started");
  if (Status s = config_.Validate(); !s.ok()) return s;
  if (Status st = Reload(Serving()); !st.ok()) return st;
  server_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    SSL_CTX_set_cert_cb(&ctx, &UseCurrentCertificate, this);
    return SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) == 1;
  });
  if (!server_->is_valid()) {
    server_.reset();
    return Status::InvalidArgument("webhook TLS context cannot be set up");
  }
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_read_timeout(10, 0);
  server_->set_write_timeout(10, 0);
  server_->Post("/mutate", [this](const httplib::Request& req, httplib::Response& res) {
    AdmissionResult result;
    try {
      result = Handle(req.body);
    } catch (const std::exception& e) {  // nothing below should throw; if it does, the edge answers
      result.http_status = 500;
      result.reason = std::string("internal error: ") + e.what();
      result.body = nlohmann::json{{"error", result.reason}}.dump();
    }
    res.status = result.http_status;
    res.set_content(result.body, result.content_type.c_str());
    MEMHA_LOG(kInfo, "webhook",
              "review uid=" << result.uid << " pod=" << result.pod_namespace << "/" << result.pod_name
                            << " decision=" << DecisionName(result.decision) << " dry_run=" << result.dry_run
                            << (result.reason.empty() ? "" : " reason=\"" + result.reason + "\""));
    if (observer_) observer_(result);
    if (not_injected_sink_ && result.WorthAnEvent() && !result.dry_run) {
      std::lock_guard lock(sink_mu_);
      if (sink_queue_.size() < 256) sink_queue_.push_back(result);
      sink_cv_.notify_one();
    }
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.address);
  } else {
    port_ = server_->bind_to_port(options_.address, options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    server_.reset();
    return Status::Unavailable("webhook: cannot listen on " + options_.address + ":" + std::to_string(options_.port));
  }
  if (not_injected_sink_) {
    sink_thread_ = std::thread([this] {
      std::unique_lock lock(sink_mu_);
      for (;;) {
        sink_cv_.wait(lock, [this] { return sink_stop_ || !sink_queue_.empty(); });
        if (sink_stop_) return;
        AdmissionResult r = std::move(sink_queue_.front());
        sink_queue_.pop_front();
        lock.unlock();
        not_injected_sink_(r);
        lock.lock();
      }
    });
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  MEMHA_LOG(kInfo, "webhook", "listening on https://" << options_.address << ":" << port_ << "/mutate");
  return Status::Ok();
}

void WebhookServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(sink_mu_);
    sink_stop_ = true;
  }
  sink_cv_.notify_all();
  if (sink_thread_.joinable()) sink_thread_.join();
  server_.reset();
}

}  // namespace memha::webhook
