#!/usr/bin/env python3
"""A tiny webhook receiver that verifies Standard Webhooks signatures.

    scripts/webhook-receiver.py 8090 --secret-file .local/demo-webhook.json
    scripts/webhook-receiver.py 8090 --secret whsec_...   # repeatable (rotation)
    scripts/webhook-receiver.py --self-test

Each POST must carry `webhook-id`, `webhook-timestamp` and
`webhook-signature` (`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
several space-separated during a secret rotation), where the key is the
base64 part of the endpoint's `whsec_...` secret. The signature is checked
against the raw body, in constant time; a timestamp more than 5 minutes
from this machine's clock is refused (replay protection). Verified events
are printed once per `webhook-id` (retries and redeliveries reuse it) and
answered 204; anything else is answered 400 and never counted.
Standard library only.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60


class VerificationError(Exception):
    pass


def key_of(secret):
    if not secret.startswith("whsec_"):
        raise VerificationError("secret must start with whsec_")
    return base64.b64decode(secret[len("whsec_"):])


def sign(secret, msg_id, timestamp, body):
    mac = hmac.new(key_of(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(secrets, msg_id, timestamp, signatures, body, now=None):
    """Raises VerificationError unless a v1 signature by one of `secrets`
    covers this id, timestamp and body, and the timestamp is fresh."""
    now = time.time() if now is None else now
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise VerificationError("bad webhook-timestamp")
    if abs(now - ts) > TOLERANCE_SECONDS:
        raise VerificationError("webhook-timestamp outside the 5 minute tolerance")
    given = [s for s in (signatures or "").split(" ") if s.startswith("v1,")]
    for secret in secrets:
        expected = sign(secret, msg_id, ts, body)
        if any(hmac.compare_digest(expected, g) for g in given):
            return
    raise VerificationError("no signature matches")


def self_test():
    # Reference vector of the Standard Webhooks libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, ts, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    sig = sign(secret, msg_id, ts, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig
    verify([secret], msg_id, str(ts), sig, body, now=ts)
    other = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()
    verify([secret], msg_id, str(ts), f"v1,bm90IGl0 {sig}", body, now=ts)  # rotation: any may match
    for args in (
        ([secret], msg_id, str(ts), sig, body + b" ", ts),        # tampered body
        ([secret], "msg_other", str(ts), sig, body, ts),          # another id
        ([secret], msg_id, str(ts), sig, body, ts + 301),         # too old
        ([secret], msg_id, str(ts), sig, body, ts - 301),         # from the future
        ([other], msg_id, str(ts), sig, body, ts),                # wrong secret
        ([secret], msg_id, "soon", sig, body, ts),                # unreadable timestamp
    ):
        try:
            verify(*args[:5], now=args[5])
        except VerificationError:
            continue
        raise AssertionError(f"accepted {args}")
    print("webhook-receiver self-test: ok")


def load_secrets(args):
    secrets = list(args.secret or [])
    if args.secret_file:
        with open(args.secret_file) as f:
            secrets.append(json.load(f)["secret"])
    if not secrets:
        sys.exit("give --secret whsec_... or --secret-file FILE (the JSON of POST /v1/webhook-endpoints)")
    return secrets


def serve(port, secrets):
    seen = set()
    lock = threading.Lock()  # requests are handled on threads

    def emit(line):
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(min(length, 1 << 20))
            msg_id = self.headers.get("webhook-id", "")
            try:
                verify(secrets, msg_id, self.headers.get("webhook-timestamp"),
                       self.headers.get("webhook-signature"), body)
            except VerificationError as e:
                emit(f"REFUSED {msg_id or '-'}: {e}")
                self.send_response(400)
                self.end_headers()
                return
            self.send_response(204)
            self.end_headers()
            with lock:
                duplicate = msg_id in seen
                seen.add(msg_id)
            if duplicate:
                emit(f"duplicate {msg_id} (already processed)")
                return
            event = json.loads(body)
            data = event.get("data", {})
            emit(f"verified {msg_id} {event.get('type')} {data.get('id')} {data.get('amount')} "
                 f"{data.get('card_masked')} {data.get('error_message') or ''}".rstrip())

        def log_message(self, *args):
            pass

    emit(f"webhook receiver on http://127.0.0.1:{port}/ ({len(secrets)} secret(s))")
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("port", type=int, nargs="?")
    p.add_argument("--secret", action="append", help="whsec_... (repeat during a rotation)")
    p.add_argument("--secret-file", help="JSON file with a `secret` field")
    p.add_argument("--self-test", action="store_true")
    args = p.parse_args()
    if args.self_test:
        self_test()
        return
    if args.port is None:
        p.error("port is required")
    serve(args.port, load_secrets(args))


if __name__ == "__main__":
    main()
