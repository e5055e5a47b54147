"""Signed topology pushes against the real sidecar (issue 12): only pushes the controller signed for this pod, newer
than the last accepted one and within the skew window are applied; every refusal is counted by reason; a signed
epoch reset recovers a sidecar locked by an (epoch, version) from the future, including one kept in its state file.
Signs with Debian's python3-cryptography (Ed25519), the same message as common/crypto/push_signature.cc."""
import base64
import json
import os
import time
import unittest
import urllib.error
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness import Client, Memcached, Sidecar, free_port, main, pool, topology

POD = "shop/web-1"
UID = "0d1c-uid-1"
MAX = 2**64 - 1


def raw_public(key):
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def signed_headers(key, body, pod=POD, uid=UID, ts=None, reset=False):
    ts = int(time.time() * 1000) if ts is None else ts
    message = f"memha-push-v1\n{pod}\n{uid}\n{ts}\n{1 if reset else 0}\n".encode() + body.encode()
    return {"X-Memha-Pod": pod, "X-Memha-Pod-Uid": uid, "X-Memha-Timestamp": str(ts),
            "X-Memha-Reset": "1" if reset else "0",
            "X-Memha-Signature": base64.b64encode(key.sign(message)).decode()}


class PushAuthTest(unittest.TestCase):
    def setUp(self):
        self.current = Ed25519PrivateKey.generate()
        self.next = Ed25519PrivateKey.generate()
        self.mc = Memcached()
        self.port = free_port()
        self.state = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"memha-push-auth-{self.port}.json")
        self.sidecar = None

    def tearDown(self):
        if self.sidecar is not None:
            self.assertEqual(self.sidecar.stop(), 0)
        self.mc.stop()
        if os.path.exists(self.state):
            os.unlink(self.state)

    def start(self):
        self.sidecar = Sidecar(state_file=self.state, extra=[
            "--push-public-key", raw_public(self.current) + "," + raw_public(self.next),
            "--pod", POD, "--pod-uid", UID])

    def topo(self, version, epoch=1):
        return json.dumps(topology(epoch, version, [pool("shop/cache-a", f"127.0.0.1:{self.port}",
                                                         [("cache-a-0", self.mc.address, "up")])]))

    def put(self, body, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.sidecar.admin_port}/v1/topology", method="PUT",
                                     data=body.encode(), headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def held(self):
        status, body = self.sidecar.http("GET", "/v1/topology")
        return (json.loads(body)["epoch"], json.loads(body)["version"]) if status == 200 else None

    def refused(self, reason):
        return self.sidecar.metric("memha_push_refused_total", reason=reason) or 0

    def test_only_signed_pushes_for_this_pod_are_applied(self):
        self.start()
        good = self.topo(5)
        status, body = self.put(good)
        self.assertEqual((status, body["reason"]), (401, "unsigned"))
        status, body = self.put(good, {"Authorization": "Bearer anything"})
        self.assertEqual((status, body["reason"]), (401, "unsigned"), "a bearer token is no longer proof")
        status, body = self.put(good, signed_headers(Ed25519PrivateKey.generate(), good))
        self.assertEqual((status, body["reason"]), (401, "bad_signature"))
        status, body = self.put(good, signed_headers(self.current, good, pod="shop/web-2"))
        self.assertEqual((status, body["reason"]), (403, "wrong_pod"), "a push meant for another pod")
        status, body = self.put(good, signed_headers(self.current, good, uid="uid-of-an-older-web-1"))
        self.assertEqual((status, body["reason"]), (403, "wrong_pod"), "a push meant for an earlier incarnation")
        tampered = signed_headers(self.current, good)
        status, body = self.put(self.topo(6), tampered)
        self.assertEqual((status, body["reason"]), (401, "bad_signature"), "the body is signed")
        now = int(time.time() * 1000)
        status, body = self.put(good, signed_headers(self.current, good, ts=now - 120_000))
        self.assertEqual((status, body["reason"]), (401, "skew"), "a stale push")
        status, body = self.put(good, signed_headers(self.current, good, ts=now + 120_000))
        self.assertEqual((status, body["reason"]), (401, "skew"), "a push from the future")
        self.assertIsNone(self.held(), "nothing refused may change the topology")
        self.assertEqual(self.sidecar.http("GET", "/readyz")[0], 503)

        ok = signed_headers(self.current, good)
        self.assertEqual(self.put(good, ok)[0], 200)
        self.assertEqual(self.held(), (1, 5))
        status, body = self.put(good, ok)
        self.assertEqual((status, body["reason"]), (401, "replay"), "the same signed request again")
        time.sleep(0.002)
        # Rotation: the controller now signs with the next key; the sidecar was given both at injection.
        newer = self.topo(6)
        self.assertEqual(self.put(newer, signed_headers(self.next, newer))[0], 200)
        self.assertEqual(self.held(), (1, 6))
        c = Client(self.port)
        self.assertEqual(c.set("k", "v"), b"STORED")
        c.close()

        for reason, count in (("unsigned", 2), ("bad_signature", 2), ("wrong_pod", 2), ("skew", 2), ("replay", 1)):
            self.assertEqual(self.refused(reason), count, reason)

    def test_forged_future_epoch_cannot_lock_the_sidecar(self):
        # Issue 12: with the shared token, a push of epoch 2^64-1 was accepted and every later push got 409.
        self.start()
        first = self.topo(1, epoch=3)
        self.assertEqual(self.put(first, signed_headers(self.current, first))[0], 200)
        forged = self.topo(MAX, epoch=MAX)
        status, _ = self.put(forged, {"Authorization": "Bearer stolen-token"})
        self.assertEqual(status, 401)
        time.sleep(0.002)
        nxt = self.topo(2, epoch=3)
        self.assertEqual(self.put(nxt, signed_headers(self.current, nxt))[0], 200)
        self.assertEqual(self.held(), (3, 2))

    def test_signed_reset_recovers_a_lockout_kept_in_the_state_file(self):
        # A state file left by the old scheme's lockout (or copied from another cluster) holds epoch 2^64-1.
        with open(self.state, "w") as f:
            f.write(self.topo(MAX, epoch=MAX))
        self.start()
        self.assertEqual(self.held(), (MAX, MAX))
        push = self.topo(7, epoch=4)
        status, body = self.put(push, signed_headers(self.current, push))
        self.assertEqual(status, 409)
        self.assertEqual((body["held_epoch"], body["held_version"]), (MAX, MAX), "409 tells the controller what is held")
        time.sleep(0.002)
        # What the controller sends next: the same generation, signed with reset=1 (the flag is covered by the
        # signature, so only the controller can send it).
        status, _ = self.put(push, {**signed_headers(self.current, push), "X-Memha-Reset": "1"})
        self.assertEqual(status, 401, "a reset flag added to a signed push breaks the signature")
        time.sleep(0.002)
        self.assertEqual(self.put(push, signed_headers(self.current, push, reset=True))[0], 200)
        self.assertEqual(self.held(), (4, 7))
        self.assertEqual(self.sidecar.metric("memha_push_epoch_resets_total"), 1)
        with open(self.state) as f:
            self.assertEqual(json.load(f)["epoch"], 4, "the state file no longer holds the lockout")
        self.assertEqual(self.sidecar.stop(), 0)
        self.start()  # a restart keeps the recovered generation, and ordinary pushes work again
        self.assertEqual(self.held(), (4, 7))
        later = self.topo(8, epoch=4)
        self.assertEqual(self.put(later, signed_headers(self.current, later))[0], 200)
        self.assertEqual(self.held(), (4, 8))


if __name__ == "__main__":
    main()
