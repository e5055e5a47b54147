// memha-controller: watches Services and Pods, pushes each memha-sidecar its topology (leader only), answers
// GET /v1/topology, /healthz, /readyz, /metrics, and serves the admission webhook. See docs/CONTROLLER.md.
#include <csignal>
#include <cstdio>
#include <pthread.h>

#include "common/log.h"
#include "controller/app/controller.h"
#include "controller/app/flags.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto flags = memha::app::ParseFlags(args);
  if (!flags.ok()) {
    std::fprintf(stderr, "memha-controller: %s\n", flags.status().message().c_str());
    return 2;
  }
  if (flags.value().version) {
    std::printf("memha-controller %s\n", MEMHA_VERSION);
    return 0;
  }
  if (flags.value().help) {
    std::fputs(memha::app::FlagsHelp().c_str(), stdout);
    return 0;
  }
  memha::log::SetLevel(flags.value().log_level);

  // SIGTERM/SIGINT are taken by sigwait below; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  memha::app::Controller controller(std::move(flags).value());
  if (memha::Status s = controller.Start(); !s.ok()) {
    MEMHA_LOG(kError, "controller", s.message());
    controller.Shutdown();
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  MEMHA_LOG(kInfo, "controller", "signal " << sig << ": releasing the Lease and stopping");
  controller.Shutdown();
  return 0;
}
