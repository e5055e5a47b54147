#include "sidecar/router/meta_value.h"

#include <charconv>
#include <string>

namespace memha {

bool ParseMetaValue(std::string_view buf, const protocol::Reply& reply, MetaValue* out) {
  std::string_view line = reply.line.in(buf);
  if (line.substr(0, 3) != "VA ") return false;
  out->data = reply.data.in(buf);
  size_t i = 3;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    std::string_view tok = line.substr(start, i - start);
    if (tok.size() < 2) continue;
    const char* b = tok.data() + 1;
    const char* e = tok.data() + tok.size();
    switch (tok[0]) {
      case 'f': std::from_chars(b, e, out->flags); break;
      case 't': std::from_chars(b, e, out->ttl); break;
      case 'c': std::from_chars(b, e, out->cas); break;
      default: break;
    }
  }
  return true;
}

void WriteBack(Member* primary, uint32_t hash, std::string_view key_token, bool base64, const MetaValue& v,
               Metrics* metrics) {
  if (v.ttl == 0 || !primary->Usable()) return;  // about to expire, or the primary left meanwhile
  std::string head = "ms " + std::string(key_token) + " " + std::to_string(v.data.size()) + " T" +
                     std::to_string(v.ttl < 0 ? 0 : v.ttl) + " F" + std::to_string(v.flags) + " ME";
  if (base64) head += " b";
  head += "\r\n";
  std::string body(v.data);
  body += "\r\n";
  primary->Send2(hash, head, body, protocol::ReplyKind::kMeta, [metrics](const OpResult& res) {
    if (res.status == OpStatus::kOk && res.reply->line.in(res.buf).substr(0, 2) == "HD") {
      metrics->warmup_fills().Increment();
    }
  });
}

}  // namespace memha
