#include "sidecar/router/context.h"

#include <chrono>

namespace memha {

using protocol::Command;

void RoutedRequest::Finish(std::string reply, Outcome outcome) {
  if (!protocol::IsRetrieval(req.cmd)) {  // retrievals count per key
    metrics->Request(req.cmd, outcome, std::chrono::duration<double>(Clock::now() - start).count());
  }
  slot->out = std::move(reply);
  slot->Complete();
}

void RoutedRequest::FinishWith(std::string_view reply, Outcome outcome) {
  if (!protocol::IsRetrieval(req.cmd)) {
    metrics->Request(req.cmd, outcome, std::chrono::duration<double>(Clock::now() - start).count());
  }
  slot->CompleteWith(reply);
}

Outcome OutcomeOfLine(std::string_view line) {
  if (line.substr(0, 12) == "CLIENT_ERROR") return Outcome::kClientError;
  if (line.substr(0, 12) == "SERVER_ERROR" || line == "ERROR") return Outcome::kServerError;
  if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND" || line.substr(0, 2) == "NS" ||
      line.substr(0, 2) == "EX" || line.substr(0, 2) == "NF") {
    return Outcome::kNotApplied;
  }
  if (line.substr(0, 2) == "EN") return Outcome::kMiss;
  return Outcome::kOk;
}

std::string LineWithout(std::string_view line, std::string_view token) {
  std::string out;
  out.reserve(line.size() + 2);
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    std::string_view tok = line.substr(start, i - start);
    if (tok.empty() || tok == token) continue;
    if (!out.empty()) out.push_back(' ');
    out.append(tok);
  }
  out.append("\r\n");
  return out;
}

bool IsMetaQuietSuppressed(Command cmd, std::string_view line) {
  std::string_view code = line.substr(0, 2);
  switch (cmd) {
    case Command::kMetaGet: return code == "EN";
    case Command::kMetaSet: case Command::kMetaDelete: return code == "HD";
    case Command::kMetaArithmetic: return code == "HD" || code == "VA";
    default: return false;
  }
}

void Route(const RoutedPtr& r) {
  switch (r->req.cmd) {
    case Command::kGet: case Command::kGets: case Command::kGat: case Command::kGats:
      return RouteRetrieval(r);
    case Command::kMetaGet: case Command::kMetaDebug:
      return RouteMetaRead(r);
    case Command::kFlushAll:
      return RouteFlush(r);
    default:
      return RouteWrite(r);
  }
}

}  // namespace memha
