#include "sidecar/router/meta_value.h"

#include <charconv>
#include <string>

#include "sidecar/protocol/compose.h"

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
  std::string line = protocol::ComposeValueWrite(key_token, base64, v.data.size(), v.ttl, v.flags, /*add_only=*/true);
  std::string body(v.data);
  body += "\r\n";
  primary->Send(hash, protocol::MemberWire{line, body}, protocol::ReplyKind::kMeta, [metrics](const OpResult& res) {
    if (res.status == OpStatus::kOk && res.reply->code(res.buf) == "HD") metrics->warmup_fills().Increment();
  });
}

}  // namespace memha
