#pragma once
// The seam between the controller and the Kubernetes API server. The real implementation talks HTTPS
// (controller/kube/http_api.*); unit tests script a fake. Exceptions never cross this interface.
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace memha::kube {

struct ApiResponse {
  int status = 0;                                   // HTTP status code
  std::string body;
  std::map<std::string, std::string> headers;       // lower-cased names (e.g. "retry-after")
};

class KubeApi {
 public:
  virtual ~KubeApi() = default;

  // One request. `path` includes the query string ("/api/v1/pods?limit=500"). A transport failure is a non-ok
  // Result; any HTTP answer (also 4xx/5xx) is an ok Result carrying the status.
  virtual Result<ApiResponse> Request(std::string_view method, const std::string& path, const std::string& body = "",
                                      std::string_view content_type = "application/json") = 0;

  // A streaming GET (watch). `on_status` gets the HTTP status first; on 200 `on_chunk` gets the body as it
  // arrives, in pieces of any size. Return false from a callback to stop. Returns when the stream ends
  // (ok: the server closed it cleanly), on transport error (non-ok), or when a callback returned false (ok).
  virtual Result<ApiResponse> Stream(const std::string& path, const std::function<bool(std::string_view)>& on_chunk) = 0;

  // Stops any Stream in progress from another thread (shutdown).
  virtual void Cancel() = 0;
};

}  // namespace memha::kube
