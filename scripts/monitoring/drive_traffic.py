#!/usr/bin/env python3
"""Traffic for scripts/monitoring-test: every kind of request whose series a
dashboard panel or an alert reads, in a loop until SIGTERM, plus one
WebSocket client on the dashboard.

    drive_traffic.py API_URL DASHBOARD_URL MERCHANT:SECRET THROTTLED:SECRET OPERATOR_TOKEN

Each round: approvable and rule-breaking single posts (approved, and rejected
for several reasons by the processor), a batch, a read of an existing and of
an unknown id (404), malformed JSON (400), an unknown field (422), a wrong
secret (401), an idempotent replay, and a burst from the second merchant
above its rate-limit burst (429). Prints a count per status on exit; exits
non-zero if a request kind never got its expected status.
"""

import base64
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

api, dashboard, merchant, throttled, operator_token = sys.argv[1:6]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
seen = Counter()
lock = threading.Lock()


def auth(creds):
    return "Basic " + base64.b64encode(creds.encode()).decode()


def request(method, path, body=None, creds=merchant, raw=None, headers=None, label=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    h = {"Content-Type": "application/json"}
    if creds:
        h["Authorization"] = auth(creds)
    h.update(headers or {})
    req = urllib.request.Request(api + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        status, text = "conn-error", str(e).encode()
    with lock:
        seen[(method, label or path.split("?")[0], status)] += 1
    try:
        return status, json.loads(text or b"null")
    except ValueError:
        return status, None


def tx(amount="10.50", card="4111111111111111", cvv="123", month=12, year=2035):
    return {"credit_card_number": card, "credit_card_name": "Ada Lovelace", "credit_card_expiration_month": month,
            "credit_card_expiration_year": year, "credit_card_cvv": cvv, "amount": amount}


def one_round(n):
    last_id = None
    for i in range(6):
        status, body = request("POST", "/v1/transactions", tx(amount=f"{10 + i}.{n % 100:02d}"))
        if status == 202 and body:
            last_id = body.get("id")
    # Valid shapes the processor rejects: Luhn, over the limit, below $1.
    request("POST", "/v1/transactions", tx(card="4111111111111112"))
    request("POST", "/v1/transactions", tx(amount="1500.00"))
    request("POST", "/v1/transactions", tx(amount="0.50"))
    request("POST", "/v1/transactions/batch",
            {"transactions": [tx(amount=f"{20 + i}.00") for i in range(15)] + [tx(amount="999999.00")] * 5})
    if last_id:
        request("GET", f"/v1/transactions/{last_id}", label="/v1/transactions/{id}")
    request("GET", f"/v1/transactions/{uuid.uuid4()}", label="/v1/transactions/{id}")
    request("GET", "/v1/transactions?limit=5")
    request("POST", "/v1/transactions", raw=b'{"amount": ')
    request("POST", "/v1/transactions", {**tx(), "surprise": True})
    request("POST", "/v1/transactions", tx(), creds=merchant.split(":")[0] + ":wrong-secret")
    # The decision inline (201), for the decision-wait panel.
    request("POST", "/v1/transactions", tx(amount="44.00"), headers={"Prefer": "wait=5"})
    key = {"Idempotency-Key": f"mt-{uuid.uuid4()}"}
    request("POST", "/v1/transactions", tx(amount="33.00"), headers=key)
    request("POST", "/v1/transactions", tx(amount="33.00"), headers=key)
    # Concurrent batches above the throttled merchant's burst: some get 429.
    burst = [threading.Thread(target=request, args=("POST", "/v1/transactions/batch",
                                                    {"transactions": [tx()] * 150}), kwargs={"creds": throttled})
             for _ in range(3)]
    for t in burst:
        t.start()
    for t in burst:
        t.join()


def websocket_client():
    """An operator's browser: sign in, open the stream, read frames."""
    host, port = dashboard.split("//")[1].rstrip("/").split(":")
    frames = 0
    while not stop.is_set():
        try:
            req = urllib.request.Request(dashboard.rstrip("/") + "/api/session", method="POST",
                                         data=json.dumps({"kind": "operator", "token": operator_token}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                token = json.load(r)["token"]
            s = socket.create_connection((host, int(port)), timeout=5)
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                       f"Sec-WebSocket-Protocol: dashboard.v1, bearer.{token}\r\n\r\n").encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("closed during handshake")
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            if b" 101 " not in head.split(b"\r\n")[0]:
                raise OSError(f"handshake refused: {head[:80]!r}")
            s.settimeout(1)
            while not stop.is_set():
                while len(buf) < 2:
                    buf += _recv(s)
                length = buf[1] & 0x7F
                offset = 2
                if length == 126:
                    while len(buf) < 4:
                        buf += _recv(s)
                    length, offset = int.from_bytes(buf[2:4], "big"), 4
                elif length == 127:
                    while len(buf) < 10:
                        buf += _recv(s)
                    length, offset = int.from_bytes(buf[2:10], "big"), 10
                while len(buf) < offset + length:
                    buf += _recv(s)
                opcode = buf[0] & 0x0F
                buf = buf[offset + length:]
                if opcode == 8:
                    raise OSError("server closed the stream")
                frames += 1
            s.close()
        except socket.timeout:
            continue
        except (OSError, ValueError, KeyError, urllib.error.URLError) as e:
            print(f"drive_traffic: websocket: {e}; reconnecting", file=sys.stderr)
            stop.wait(1)
    with lock:
        seen[("WS", "/ws", "frames")] = frames


def _recv(s):
    while True:
        if stop.is_set():
            raise OSError("stopping")
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            raise OSError("connection closed")
        return chunk


ws = threading.Thread(target=websocket_client, daemon=True)
ws.start()
n = 0
while not stop.is_set():
    one_round(n)
    n += 1
    stop.wait(0.5)
ws.join(timeout=5)

for k, v in sorted(seen.items(), key=str):
    print(f"{k[0]:5} {k[1]:28} {k[2]!s:10} {v}")
expected = [("POST", "/v1/transactions", 202), ("POST", "/v1/transactions/batch", 200),
            ("POST", "/v1/transactions", 400), ("POST", "/v1/transactions", 422),
            ("POST", "/v1/transactions", 401), ("POST", "/v1/transactions/batch", 429),
            ("GET", "/v1/transactions/{id}", 404), ("GET", "/v1/transactions/{id}", 200)]
missing = [e for e in expected if not seen[e]]
if missing or not seen[("WS", "/ws", "frames")]:
    print(f"drive_traffic: never got {missing or 'a WebSocket frame'}", file=sys.stderr)
    sys.exit(1)
