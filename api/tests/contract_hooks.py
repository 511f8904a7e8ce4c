"""Schemathesis hooks for api/tests/contract.sh.

The fuzzer reuses Idempotency-Key values across different bodies, which the
API rightly answers 422. Every request gets a fresh key instead, so that
valid bodies are judged on their own; idempotency itself is covered by the
Rust tests (api/tests/idempotency.rs).
"""
import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
