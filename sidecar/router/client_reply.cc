#include "sidecar/router/client_reply.h"

namespace memha {

using protocol::Command;

void AppendClientMeta(std::string* out, std::string_view buf, const protocol::Reply& reply,
                      std::string_view client_opaque) {
  std::string_view line = reply.line.in(buf);
  if (reply.opaque.len == 0) {
    out->append(line);
  } else {
    size_t at = reply.opaque.off - reply.line.off;
    out->append(line.substr(0, at));
    if (!client_opaque.empty()) out->append(" ").append(client_opaque);
    out->append(line.substr(at + reply.opaque.len));
  }
  out->append("\r\n");
  if (reply.data.len > 0 || line.substr(0, 2) == "VA") {
    out->append(reply.data.in(buf));
    out->append("\r\n");
  }
}

std::string TextWriteReply(Command cmd, std::string_view buf, const protocol::Reply& reply) {
  std::string_view line = reply.line.in(buf);
  if (reply.error) return std::string(line) + "\r\n";
  std::string_view code = line.substr(0, 2);
  switch (cmd) {
    case Command::kIncr: case Command::kDecr:
      if (code == "VA") return std::string(reply.data.in(buf)) + "\r\n";
      if (code == "NF") return "NOT_FOUND\r\n";
      break;
    case Command::kDelete:
      if (code == "HD") return "DELETED\r\n";
      if (code == "NF") return "NOT_FOUND\r\n";
      break;
    case Command::kTouch:
      if (code == "HD") return "TOUCHED\r\n";
      if (code == "EN") return "NOT_FOUND\r\n";
      break;
    default:  // storage
      if (code == "HD") return "STORED\r\n";
      if (code == "NS") return "NOT_STORED\r\n";
      if (code == "EX") return "EXISTS\r\n";
      if (code == "NF") return "NOT_FOUND\r\n";
      break;
  }
  return "SERVER_ERROR memha: unexpected member reply\r\n";
}

}  // namespace memha
