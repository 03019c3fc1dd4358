"""Send a fixed set of spans to an OTLP/HTTP endpoint with the real OpenTelemetry Python SDK.

Run by workers/ingest/tests/otlp_sdk.rs with the interpreter e2e/stack provisions
(HELIOS_OTEL_PYTHON). Exports every span in one batch (BatchSpanProcessor, as an application
would), gzip-compressed, with a bearer token, using the protobuf or the JSON exporter; prints one
JSON object describing each HTTP exchange and exits non-zero if any export failed.

    send_spans.py --endpoint http://127.0.0.1:PORT/v1/traces --encoding proto|json
                  --token TOKEN --service NAME --t0 EPOCH_NS
"""

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

MS = 1_000_000

# (name, kind, attributes, status, start offset ms, duration ms)
SPANS = [
    ("GET /pay/{id}", SpanKind.SERVER,
     {"http.request.method": "GET", "http.route": "/pay/{id}", "url.path": "/pay/42",
      "http.response.status_code": 200, "tenant": "acme"}, None, 1, 12.5),
    ("POST /refund", SpanKind.SERVER,
     {"http.request.method": "POST", "url.path": "/refund", "http.response.status_code": 503},
     StatusCode.ERROR, 2, 40),
    ("legacy handler", SpanKind.INTERNAL,
     {"http.method": "GET", "http.target": "/old?x=1", "http.status_code": 404}, None, 3, 3),
    ("grpc Charge", SpanKind.SERVER, {"rpc.system": "grpc"}, StatusCode.ERROR, 4, 7),
    ("call upstream", SpanKind.CLIENT,
     {"http.request.method": "GET", "url.full": "http://upstream/x"}, None, 5, 2),
    ("db query", SpanKind.INTERNAL, {"db.system.name": "postgresql"}, None, 6, 1),
]


def exporter(encoding, endpoint, token):
    headers = {"Authorization": f"Bearer {token}"}
    if encoding == "proto":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, headers=headers,
                                compression=Compression.Gzip, timeout=10)
    from opentelemetry.exporter.otlp.common.http import Compression
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, headers=headers,
                            compression=Compression.GZIP, timeout=10)


class Recording:
    """Wraps the exporter's HTTP transport to record what went over the wire."""

    def __init__(self, transport):
        self.inner = transport
        self.exchanges = []

    def request(self, method, url, headers=None, data=None, timeout=None, **kw):
        result = self.inner.request(method, url, headers=headers, data=data, timeout=timeout, **kw)
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        got = result.headers() if result.status_code is not None else {}
        self.exchanges.append({
            "status": result.status_code,
            "content_type": sent.get("content-type"),
            "content_encoding": sent.get("content-encoding"),
            "gzip_magic": bytes(data[:2]).hex() if data else None,
            "response_content_type": got.get("content-type"),
            "error": str(result.error) if result.error else None,
        })
        return result

    def __getattr__(self, name):
        return getattr(self.inner, name)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--encoding", choices=["proto", "json"], required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--t0", type=int, required=True)
    a = p.parse_args()

    exp = exporter(a.encoding, a.endpoint, a.token)
    # The SDK's exporters hold their HTTP client in `_client._transport`; recording it is how the
    # test proves gzip and the content type went over the wire. If the layout changes, fail.
    recording = Recording(exp._client._transport)
    exp._client._transport = recording
    results = []
    original_export = exp.export

    def export(spans):
        r = original_export(spans)
        results.append({"spans": len(spans), "ok": r == SpanExportResult.SUCCESS})
        return r

    exp.export = export
    resource = Resource.create({"service.name": a.service, "service.version": "1.2.3",
                                "deployment.environment.name": "it"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exp, max_export_batch_size=512,
                                                   schedule_delay_millis=60_000))
    tracer = provider.get_tracer("helios-ingest-it")
    for name, kind, attrs, status, start_ms, dur_ms in SPANS:
        start = a.t0 + start_ms * MS
        span = tracer.start_span(name, kind=kind, attributes=attrs, start_time=start)
        if status is not None:
            span.set_status(Status(status))
        span.end(end_time=start + int(dur_ms * MS))
    provider.force_flush(30_000)
    provider.shutdown()
    out = {"exports": results, "exchanges": recording.exchanges}
    print(json.dumps(out))
    ok = results and all(r["ok"] for r in results) and sum(r["spans"] for r in results) == len(SPANS)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
