#pragma once
// Member replies (always meta, with the sidecar's opaque) turned into what the client would have had from
// memcached for the command it sent.
#include <string>
#include <string_view>

#include "sidecar/protocol/reply.h"

namespace memha {

// The meta reply with the sidecar's opaque replaced by the client's O token (or removed when it sent none),
// data block included.
void AppendClientMeta(std::string* out, std::string_view buf, const protocol::Reply& reply,
                      std::string_view client_opaque);

// The text reply line (with "\r\n") for a text write translated to meta: STORED, DELETED, TOUCHED, a number, ...
// Error lines are returned as the member wrote them.
std::string TextWriteReply(protocol::Command cmd, std::string_view buf, const protocol::Reply& reply);

}  // namespace memha
