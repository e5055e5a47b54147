#include "sidecar/protocol/compose.h"

#include <charconv>

namespace memha::protocol {
namespace {

template <typename T>
void AppendTo(std::string* out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

void AppendDecimal(std::string* out, uint64_t v) { AppendTo(out, v); }
void AppendDecimal(std::string* out, int64_t v) { AppendTo(out, v); }

std::string ComposeClientMeta(const Request& r, std::string_view base, size_t* opaque_at) {
  std::string out;
  out.reserve(r.line.len + 16);
  out.append(CommandName(r.cmd)).push_back(' ');
  out.append(r.keys[0].in(base));
  if (r.cmd == Command::kMetaSet) {
    out.push_back(' ');
    AppendDecimal(&out, r.value_len);
  }
  *opaque_at = std::string_view::npos;
  for (uint8_t i = 0; i < r.nflags; ++i) {
    std::string_view f = r.flags[i].in(base);
    const char c = f[0];
    std::string_view arg = f.substr(1);
    switch (c) {
      case 'q': case 'P': case 'L':  // quiet mode is the sidecar's; P and L are no-ops to memcached
        break;
      case 'O':
        *opaque_at = out.size();
        break;
      case 'N': case 'T': case 'R': {
        int32_t v = 0;
        McStrtol(arg, &v);  // validated by the parser
        out.push_back(' ');
        out.push_back(c);
        AppendDecimal(&out, v);
        break;
      }
      case 'F': {
        uint32_t v = 0;
        McStrtoul(arg, &v);
        out.push_back(' ');
        out.push_back(c);
        AppendDecimal(&out, v);
        break;
      }
      case 'C': case 'J': case 'D': {
        uint64_t v = 0;
        McStrtoull(arg, &v);
        out.push_back(' ');
        out.push_back(c);
        AppendDecimal(&out, v);
        break;
      }
      case 'M':
        out.push_back(' ');
        out.append(f.substr(0, 2));
        break;
      default:  // flags without an argument: memcached reads only their first character
        out.push_back(' ');
        out.push_back(c);
        break;
    }
  }
  return out;
}

std::string ComposeMetaDebug(const Request& r, std::string_view base) {
  std::string out("me ");
  out.append(r.keys[0].in(base));
  if (r.meta_base64) out.append(" b");
  return out;
}

void ComposeGet(std::string* out, std::string_view key, bool with_cas, bool touch, int64_t exptime) {
  out->clear();
  out->reserve(key.size() + 32);
  out->append("mg ").append(key).append(" v f");
  if (with_cas) out->append(" c");
  if (touch) {
    out->append(" T");
    AppendDecimal(out, exptime);
  }
}

std::string ComposeGet(std::string_view key, bool with_cas, bool touch, int64_t exptime) {
  std::string out;
  ComposeGet(&out, key, with_cas, touch, exptime);
  return out;
}

std::string ComposeStorage(const Request& r, std::string_view key, bool as_set) {
  std::string out;
  out.reserve(key.size() + 48);
  out.append("ms ").append(key).push_back(' ');
  AppendDecimal(&out, r.value_len);
  out.append(" F");
  AppendDecimal(&out, r.client_flags);
  out.append(" T");
  AppendDecimal(&out, r.exptime);
  if (as_set) return out;
  switch (r.cmd) {
    case Command::kAdd: out.append(" ME"); break;
    case Command::kReplace: out.append(" MR"); break;
    case Command::kAppend: out.append(" MA"); break;
    case Command::kPrepend: out.append(" MP"); break;
    case Command::kCas:
      out.append(" C");
      AppendDecimal(&out, r.cas_unique);
      break;
    default: break;
  }
  return out;
}

std::string ComposeArithmetic(const Request& r, std::string_view key) {
  std::string out;
  out.reserve(key.size() + 40);
  out.append("ma ").append(key).append(" D");
  AppendDecimal(&out, r.delta);
  out.append(r.cmd == Command::kDecr ? " MD v" : " MI v");
  return out;
}

std::string ComposeDelete(std::string_view key_token, bool base64) {
  std::string out("md ");
  out.append(key_token);
  if (base64) out.append(" b");
  return out;
}

std::string ComposeTouch(std::string_view key, int64_t exptime) {
  std::string out("mg ");
  out.append(key).append(" T");
  AppendDecimal(&out, exptime);
  return out;
}

std::string ComposeFlush(const Request& r) {
  std::string out("flush_all");
  if (r.exptime != 0) {
    out.push_back(' ');
    AppendDecimal(&out, r.exptime);
  }
  return out;
}

std::string ComposeValueRead(std::string_view key_token, bool base64) {
  std::string out("mg ");
  out.append(key_token);
  if (base64) out.append(" b");
  out.append(" v f t");
  return out;
}

std::string ComposeValueWrite(std::string_view key_token, bool base64, size_t len, int64_t ttl, uint32_t flags,
                              bool add_only) {
  std::string out("ms ");
  out.append(key_token).push_back(' ');
  AppendDecimal(&out, len);
  out.append(" T");
  AppendDecimal(&out, ttl < 0 ? 0 : ttl);
  out.append(" F");
  AppendDecimal(&out, flags);
  if (base64) out.append(" b");
  if (add_only) out.append(" ME");
  return out;
}

}  // namespace memha::protocol
