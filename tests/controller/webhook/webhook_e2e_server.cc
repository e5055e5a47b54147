// memha-webhook-e2e: the webhook part of memha-controller alone, for tests/k8s/webhook_e2e.sh against a real
// kube-apiserver. It does what the controller does at start: makes (or reads) the
// webhook certificate in Secrets of --namespace, sets the caBundle of --webhook-configuration, then serves
// POST /mutate on 127.0.0.1 until SIGTERM/SIGINT or --timeout-s. The port is written to --port-file.
//
//   memha-webhook-e2e --kubeconfig FILE --namespace NS --webhook-configuration NAME --port-file FILE
//                     [--port N] [--timeout-s N] [any webhook flag, see controller/webhook/flags.h]
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "controller/kube/config.h"
#include "controller/kube/http_api.h"
#include "controller/webhook/flags.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int Fail(const std::string& what) {
  std::cerr << "memha-webhook-e2e: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace memha;
  std::string kubeconfig, ns, port_file;
  int timeout_s = 600;
  webhook::WebhookSettings settings;
  settings.server.address = "127.0.0.1";
  settings.server.port = 0;
  settings.certificates.ip_addresses = {"127.0.0.1"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    if (arg == "--kubeconfig") kubeconfig = value;
    else if (arg == "--namespace") ns = value;
    else if (arg == "--port-file") port_file = value;
    else if (arg == "--timeout-s") timeout_s = std::stoi(value);
    else if (arg == "--port") settings.server.port = std::stoi(value);
    else {
      auto applied = webhook::ApplyWebhookFlag(arg, value, &settings);
      if (!applied.ok()) return Fail(applied.status().message());
      if (!applied.value()) return Fail("unknown flag " + arg + "\nwebhook flags:\n" + webhook::WebhookFlagsHelp());
    }
  }
  if (ns.empty() || port_file.empty()) return Fail("--namespace and --port-file are required");
  if (Status s = settings.Finish(ns); !s.ok()) return Fail(s.message());

  auto config = kube::LoadConfig(kubeconfig);
  if (!config.ok()) return Fail("kubeconfig: " + config.status().message());
  auto api = kube::HttpKubeApi::Create(config.value());
  if (!api.ok()) return Fail("API client: " + api.status().message());

  // What memha-controller's main does, in this order.
  webhook::CertificateBootstrap certs(*api.value(), settings.certificates);
  auto tls = certs.Run();
  if (!tls.ok()) return Fail("webhook certificate: " + tls.status().message());
  webhook::WebhookServer server(settings.server, tls.value(), settings.inject);
  if (Status s = server.Start(); !s.ok()) return Fail(s.message());

  {
    std::ofstream out(port_file + ".tmp");
    out << server.port() << "\n";
  }
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  std::cout << "memha-webhook-e2e: serving https://127.0.0.1:" << server.port() << "/mutate" << std::endl;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  for (int i = 0; i < timeout_s * 10 && g_stop == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (i % 300 == 299) {  // as the controller does periodically: a re-applied configuration may blank it
      if (Status s = certs.EnsureCaBundle(tls.value().ca_pem); !s.ok()) std::cerr << "caBundle: " << s.message() << "\n";
    }
  }
  server.Stop();
  std::cout << "memha-webhook-e2e: stopped" << std::endl;
  return 0;
}
