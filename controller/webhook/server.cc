#include "controller/webhook/server.h"

#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <exception>

#include "common/log.h"

namespace memha::webhook {
namespace {

// Loads the PEM certificate and key into the server's SSL_CTX (TLS >= 1.2).
bool SetupContext(SSL_CTX& ctx, const ServingCertificate& tls) {
  BIO* cert_bio = BIO_new_mem_buf(tls.cert_pem.data(), static_cast<int>(tls.cert_pem.size()));
  BIO* key_bio = BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size()));
  X509* cert = cert_bio != nullptr ? PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr) : nullptr;
  EVP_PKEY* key = key_bio != nullptr ? PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr) : nullptr;
  bool ok = cert != nullptr && key != nullptr && SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) == 1 &&
            SSL_CTX_use_certificate(&ctx, cert) == 1 && SSL_CTX_use_PrivateKey(&ctx, key) == 1 &&
            SSL_CTX_check_private_key(&ctx) == 1;
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cert_bio);
  BIO_free(key_bio);
  return ok;
}

}  // namespace

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
  const ServingCertificate tls = tls_;
  server_ = std::make_unique<httplib::SSLServer>([tls](SSL_CTX& ctx) { return SetupContext(ctx, tls); });
  if (!server_->is_valid()) {
    server_.reset();
    return Status::InvalidArgument("webhook TLS certificate or key cannot be used");
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
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  MEMHA_LOG(kInfo, "webhook", "listening on https://" << options_.address << ":" << port_ << "/mutate");
  return Status::Ok();
}

void WebhookServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace memha::webhook
