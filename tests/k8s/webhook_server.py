#!/usr/bin/env python3
"""A tiny HTTPS mutating admission webhook, for the local-k8s smoke test only.

It answers every AdmissionReview with allowed=true and a JSON patch that adds the label
memha.io/mutated=true to the object, logs one line per request, binds 127.0.0.1 on a port the
kernel picks (written to --port-file once it listens), and stops by itself after --timeout seconds.
"""
import argparse
import base64
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL_KEY = "memha.io/mutated"


def patch_for(obj):
    labels = (obj or {}).get("metadata", {}).get("labels")
    if labels is None:
        return [{"op": "add", "path": "/metadata/labels", "value": {LABEL_KEY: "true"}}]
    # JSON pointer escaping: "/" -> "~1"
    return [{"op": "add", "path": "/metadata/labels/" + LABEL_KEY.replace("~", "~0").replace("/", "~1"),
             "value": "true"}]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
            review = json.loads(self.rfile.read(n))
            req = review["request"]
            patch = patch_for(req.get("object"))
            body = json.dumps({
                "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                "kind": "AdmissionReview",
                "response": {
                    "uid": req["uid"],
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                },
            }).encode()
            print("webhook: %s %s %s/%s -> label %s" % (
                self.path, req.get("operation"), req.get("namespace"),
                req.get("name") or (req.get("object") or {}).get("metadata", {}).get("name"), LABEL_KEY),
                flush=True)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except Exception as e:  # a malformed request: answer 400, keep serving
            print("webhook: bad request: %r" % (e,), flush=True)
            self.send_error(400, str(e))

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(a.port_file + ".tmp", a.port_file)
    print("webhook: listening on https://127.0.0.1:%d" % srv.server_address[1], flush=True)
    threading.Timer(a.timeout, srv.shutdown).start()
    srv.serve_forever()
    print("webhook: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
