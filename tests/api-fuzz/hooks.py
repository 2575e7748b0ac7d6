"""Schemathesis hooks for the device API (tests/api-fuzz/run.sh).

Tokens are single use, so a token given on the command line would be spent
by the first case. Instead, before most calls to a token route this logs a
pump in (the paper's login: the fuzzed server runs with --paper-login) and
puts the fresh token, and usually the real patient id, into the case, so
that the fuzzer reaches the index and report transactions themselves and
not only the token check. A quarter of the calls keep what the fuzzer drew,
so malformed and foreign tokens are fuzzed too. Half of the generated logins
get the real account's credentials, so that successful logins happen.
"""

import os
import random

import requests
import schemathesis

BASE = os.environ["FUZZ_BASE"]
LOGIN = {
    "username": os.environ["FUZZ_USERNAME"],
    "password": os.environ["FUZZ_PASSWORD"],
    "mac": os.environ["FUZZ_MAC"],
}
TOKEN_ROUTES = ("/api/v1/device/index", "/api/v1/device/report")


def _login():
    answer = requests.post(f"{BASE}/api/v1/device/login", json=LOGIN, timeout=10)
    if answer.status_code != 200:
        return None
    return answer.json()


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.path == "/api/v1/device/login":
        # Half the logins use the real account, so that the success path
        # (and its throttle and audit writes) is fuzzed too.
        if isinstance(case.body, dict) and random.random() < 0.5:
            case.body.update(LOGIN)
            case.body.pop("nonce", None)
            case.body.pop("proof", None)
        return
    if case.path not in TOKEN_ROUTES or random.random() < 0.25:
        return
    session = _login()
    if session is None:
        return
    case.headers = dict(case.headers or {})
    case.headers["Authorization"] = f"Bearer {session['token']}"
    if isinstance(case.body, dict) and random.random() < 0.75:
        case.body["patient_id"] = session["patient_id"]
