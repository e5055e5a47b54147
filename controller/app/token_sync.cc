#include "controller/app/token_sync.h"

#include "common/log.h"

namespace memha::app {

size_t TokenSync::Once() {
  if (hooks_.read_shared) {
    auto shared = hooks_.read_shared();
    if (!shared.ok()) {
      MEMHA_LOG(kWarn, "token", "cannot re-read the shared token Secret: " << shared.status().message()
                                                                           << "; keeping the last token");
    } else if (shared.value() != token_->Get()) {
      token_->Set(shared.value());
      MEMHA_LOG(kInfo, "token", "the shared token Secret changed: pushes use the new token");
    }
  }
  if (!hooks_.leading()) {
    current_.clear();  // a later leadership checks every namespace once
    stale_ = 0;
    return 0;
  }
  // Now and then every copy is checked again, in case something else changed one.
  if (++rounds_ % kRecheckEvery == 0) current_.clear();
  const std::string token = token_->Get();
  const std::set<std::string> namespaces = hooks_.namespaces();
  std::erase_if(current_, [&](const auto& entry) { return namespaces.count(entry.first) == 0; });
  size_t stale = 0;
  for (const std::string& ns : namespaces) {
    auto it = current_.find(ns);
    if (it != current_.end() && it->second == token) continue;
    if (!hooks_.leading()) break;  // deposed or shutting down mid-round: the next leader takes over
    Status s = hooks_.ensure(ns);
    if (s.ok()) {
      if (it != current_.end()) MEMHA_LOG(kInfo, "token", "token copy updated namespace=" << ns);
      current_[ns] = token;
      std::erase_if(warned_, [&](const auto& w) { return w.first == ns; });
      continue;
    }
    ++stale;
    if (warned_.insert({ns, s.message()}).second) {
      MEMHA_LOG(kWarn, "token", "cannot update the token copy namespace=" << ns << ": " << s.message()
                                                                          << " (sidecars there will refuse pushes "
                                                                             "once they read a new token; retrying)");
    }
  }
  stale_ = stale;
  return stale;
}

}  // namespace memha::app
