#!/usr/bin/env python3
"""Demo traffic through the API: each merchant posts batches of card
transactions at a steady pace, some of them failing a business rule, so the
dashboard has something to show. Runs until killed.

    scripts/demo-traffic.py API_PORT ACCOUNT:SECRET [ACCOUNT:SECRET ...] [--per-second N]
"""
import argparse
import base64
import json
import random
import threading
import time
import urllib.error
import urllib.request


def item(i):
    t = {"credit_card_number": random.choice(["4111111111111111", "5555555555554444", "378282246310005"]),
         "credit_card_name": random.choice(["Ada Lovelace", "Grace Hopper", "Alan Turing"]),
         "credit_card_expiration_month": random.randint(1, 12),
         "credit_card_expiration_year": time.gmtime().tm_year + random.randint(1, 5),
         "credit_card_cvv": f"{random.randint(0, 999):03d}",
         "amount": f"{random.randint(100, 90000) / 100:.2f}"}
    k = i % 10
    if k == 1:
        t["credit_card_number"] = "4111111111111112"  # fails Luhn
    elif k == 2:
        t["amount"] = "1500.00"  # over the limit
    elif k == 3:
        t["amount"] = "0.50"  # under the minimum
    return t


def post_forever(port, credential, per_second, batch):
    auth = base64.b64encode(credential.encode()).decode()
    pause = batch / per_second
    i = 0
    while True:
        body = json.dumps({"transactions": [item(i + j) for j in range(batch)]}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/transactions/batch", data=body, method="POST",
                                     headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
        except (urllib.error.URLError, OSError) as e:
            print("post failed:", e, flush=True)
        i += batch
        time.sleep(pause)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port")
    p.add_argument("credentials", nargs="+", help="ACCOUNT:SECRET")
    p.add_argument("--per-second", type=float, default=50, help="transactions per second per merchant")
    p.add_argument("--batch", type=int, default=10)
    a = p.parse_args()
    for c in a.credentials:
        threading.Thread(target=post_forever, args=(a.port, c, a.per_second, a.batch), daemon=True).start()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
