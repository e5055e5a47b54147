#include "sidecar/router/meta_value.h"

#include <charconv>
#include <string>

#include "sidecar/protocol/compose.h"

namespace memha {

bool ParseMetaValue(std::string_view buf, const protocol::Reply& reply, MetaValue* out) {
  std::string_view line = reply.line.in(buf);
  if (line.substr(0, 3) != "VA ") return false;
  out->data = reply.data.in(buf);
  bool win = false, token_sent = false, stale = false;
  size_t i = 3;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    std::string_view tok = line.substr(start, i - start);
    if (tok == "W") win = true;
    if (tok == "Z") token_sent = true;
    if (tok == "X") stale = true;
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
  // A client's own invalidated item (md I) is stale (X) and still a value, as memcached's text get returns it.
  // A recache win (R) marks a real item W/Z too: only an empty one is taken for a placeholder.
  out->placeholder = (win || token_sent) && !stale && out->data.empty();
  out->won = out->placeholder && win;
  return !out->placeholder;
}

void WriteBack(Member* primary, uint32_t hash, std::string_view key_token, bool base64, const MetaValue& v,
               uint64_t placeholder_cas, Metrics* metrics) {
  if (placeholder_cas == 0 || !primary->Usable()) return;  // no placeholder of ours, or the primary left
  if (v.ttl == 0) return DropPlaceholder(primary, hash, key_token, base64, placeholder_cas);  // about to expire
  std::string line = protocol::ComposeValueWrite(key_token, base64, v.data.size(), v.ttl, v.flags, /*add_only=*/false);
  line.append(" C");
  protocol::AppendDecimal(&line, placeholder_cas);
  std::string body(v.data);
  body += "\r\n";
  primary->Send(hash, protocol::MemberWire{line, body}, protocol::ReplyKind::kMeta, [metrics](const OpResult& res) {
    if (res.status == OpStatus::kOk && res.reply->code(res.buf) == "HD") metrics->warmup_fills().Increment();
  });
}

}  // namespace memha

namespace memha {

void DropPlaceholder(Member* primary, uint32_t hash, std::string_view key_token, bool base64, uint64_t cas) {
  if (cas == 0 || !primary->Usable()) return;
  std::string line = protocol::ComposeDelete(key_token, base64);
  line.append(" C");
  protocol::AppendDecimal(&line, cas);
  primary->SendMeta(hash, line, [](const OpResult&) {});  // gone already or replaced: either is fine
}

}  // namespace memha
