"""A trivial Lambda runtime (custom-runtime protocol) that answers {"echo": <event>}.

It proves the emulator really runs a bootstrap; the report hook's own bootstrap replaces it later.
The emulator ends an idle long poll with 408, so polling errors are retried, as real runtimes do.
"""
import json
import os
import time
import urllib.error
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = API if API.startswith("http") else f"http://{API}"


def next_event():
    while True:
        try:
            with urllib.request.urlopen(f"{BASE}/2018-06-01/runtime/invocation/next") as resp:
                return resp.headers["Lambda-Runtime-Aws-Request-Id"], json.loads(resp.read() or b"null")
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)


while True:
    request_id, event = next_event()
    body = json.dumps({"echo": event}).encode()
    req = urllib.request.Request(
        f"{BASE}/2018-06-01/runtime/invocation/{request_id}/response", data=body, method="POST"
    )
    urllib.request.urlopen(req).read()
