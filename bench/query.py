"""Query latency over HTTP: ``POST /ask`` against ``rag serve``, single client and 8 concurrent clients.

    .venv/bin/python -m bench.query                  # XQuAD-de dev corpus (120 paragraphs), 3 rounds
    .venv/bin/python -m bench.query --quick          # smoke run (seconds)
    .venv/bin/python -m bench.query --env RAG_BACKEND=torch   # a server setting, e.g. for before/after

The server runs as ``rag serve`` in a subprocess over the XQuAD-de dev articles; the questions are the
file's own. Each round, in this process: a block of single-client requests (one keep-alive connection,
one request at a time), then the raw model encoding the same questions one at a time: the product's own
ONNX session called directly on the tokenizer's ids (the fastest raw query encode of the same model,
:func:`bench.common.session_encoder`; the target is ``/ask`` <= 1.2x it), the product's backend through
``embed_queries``, and for a sentence-transformers model other than multilingual-e5-small also
``SentenceTransformer.encode`` (torch, as the peers measured it); the ratios are medians of the same
rounds. Then ``--clients`` threads ask concurrently for throughput and tail latency. The server's own
``timings_ms`` show how a request's time divides.
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    Report,
    is_e5,
    is_fake,
    median,
    note,
    parser,
    rag_serve,
    run_clients,
    session_encoder,
    timed,
    write_corpus,
    xquad,
)


class _Client:
    """One keep-alive HTTP/1.1 connection (stdlib: ~0.1 ms of client overhead per request)."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, Any]:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self._conn.request(method, path, body, headers)
            response = self._conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self._conn.close()  # the server closed an idle keep-alive connection: open a new one
            self._conn.request(method, path, body, headers)
            response = self._conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def close(self) -> None:
        self._conn.close()


def _ask(client: _Client, question: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    status, payload = client.request("POST", "/ask", {"question": question})
    seconds = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"/ask answered {status}: {payload}")
    return seconds * 1000, payload


def _concurrent(
    url: str, questions: list[str], clients: int, per_client: int, fresh: bool = False
) -> tuple[float, list[float]]:
    """Seconds and latencies of ``clients`` threads asking ``per_client`` questions each; ``fresh``
    opens a new connection per request (no keep-alive)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client_loop(n: int) -> None:
        client = _Client(url)
        try:
            _ask(client, questions[n])
            barrier.wait()
            for i in range(per_client):
                if fresh:
                    client.close()
                    client = _Client(url)
                ms, _ = _ask(client, questions[(n * per_client + i) % len(questions)])
                with lock:
                    latencies.append(ms)
        finally:
            client.close()

    return run_clients(client_loop, clients, barrier), latencies


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=60, help="Requests per block / per concurrent client.")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable).")
    args = p.parse_args(argv)
    from rag.embedding.base import create_embedder
    from rag.settings import Settings

    settings = Settings()
    rounds = args.runs or (1 if args.quick else 3)
    per = 5 if args.quick else args.requests
    squad = xquad()
    questions = [q.text for q in squad.questions]
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        folder = Path(tmp)
        chosen = squad.articles[:3] if args.quick else squad.articles
        write_corpus(folder / "corpus", chosen)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "RAG_LOG_LEVEL": "WARNING",
            **extra,
        }
        with rag_serve(folder / "corpus", folder / "index", folder / "serve.log", env) as (url, _):
            client = _Client(url)
            try:
                backend = create_embedder(
                    settings.embedding.model,
                    backend=settings.embedding.backend,
                    cache_dir=folder / "index" / "models",
                )
                session = session_encoder(backend)
                raw = None
                if not is_fake(settings.embedding.model) and not is_e5(settings.embedding.model):
                    from sentence_transformers import SentenceTransformer

                    from rag.embedding.base import resolve_model_path

                    st = SentenceTransformer(resolve_model_path(settings.embedding.model), device="cpu")
                    raw = lambda q: st.encode([q], normalize_embeddings=True)  # noqa: E731
                for q in questions[:5]:  # warm both sides
                    _ask(client, q)
                    backend.embed_queries([q])
                    session(q)
                    if raw is not None:
                        raw(q)
                http_ms, fresh_ms, raw_ms, backend_ms, session_ms, timings = [], [], [], [], [], []
                for r in range(rounds):
                    block = questions[r * per : (r + 1) * per]
                    for q in block:
                        ms, payload = _ask(client, q)
                        http_ms.append(ms)
                        timings.append(payload.get("timings_ms", {}))
                    for q in block:  # a new connection each: no keep-alive, so no Nagle/delayed-ACK stall
                        fresh_client = _Client(url)
                        fresh_ms.append(_ask(fresh_client, q)[0])
                        fresh_client.close()
                    if raw is not None:
                        raw_ms += [timed(lambda q=q: raw(q), collect=False)[0] * 1000 for q in block]
                    backend_ms += [
                        timed(lambda q=q: backend.embed_queries([q]), collect=False)[0] * 1000 for q in block
                    ]
                    session_ms += [timed(lambda q=q: session(q), collect=False)[0] * 1000 for q in block]
                    note(f"round {r + 1}: http {median(http_ms):.1f} ms")
            finally:
                client.close()
            title = f"query over HTTP: {len(chosen)} XQuAD-de articles, model {settings.embedding.model}"
            report = Report(f"{title} {extra or ''}".strip())
            single = median(http_ms)
            report.add("single.http_ms.median", single, "ms", f"{len(http_ms)} requests")
            report.add("single.http_ms.p95", float(np.percentile(http_ms, 95)), "ms")
            fresh = median(fresh_ms)
            report.add("single.new_connection_ms.median", fresh, "ms", "a new TCP connection per request")
            report.add("single.new_connection_ms.p95", float(np.percentile(fresh_ms, 95)), "ms")
            references = [
                ("session", session_ms, "the product's own ONNX session called directly", "target <= 1.2"),
                (str(getattr(backend, "backend", "backend")), backend_ms, "the product's embed_queries", ""),
                ("st", raw_ms, "SentenceTransformer.encode", "target <= 1.3 (MiniLM's issue)"),
            ]
            for name, ms, what, target in references:
                if ms:
                    report.add(f"raw_{name}_encode_ms.median", median(ms), "ms", f"{what}, one question")
                    report.add(f"ratio_http_vs_raw_{name}", single / median(ms), "x", target)
                    report.add(f"ratio_new_connection_vs_raw_{name}", fresh / median(ms), "x")
            for key in ("retrieve", "compose", "total"):
                values = [t[key] for t in timings if key in t]
                if values:
                    report.add(f"server.{key}_ms.median", median(values), "ms")
            seconds, lat = _concurrent(url, questions, args.clients, per)
            report.add(f"clients{args.clients}.throughput", len(lat) / seconds, "req/s")
            report.add(f"clients{args.clients}.http_ms.median", median(lat), "ms")
            report.add(f"clients{args.clients}.http_ms.p95", float(np.percentile(lat, 95)), "ms")
            report.add(
                f"clients{args.clients}.p95_vs_single_median",
                float(np.percentile(lat, 95)) / single,
                "x",
                "target <= 4",
            )
            report.add("single.throughput", 1000 / single, "req/s", "one client, for comparison")
            seconds, lat = _concurrent(url, questions, args.clients, per, fresh=True)
            n = f"clients{args.clients}.new_connection"
            report.add(f"{n}.throughput", len(lat) / seconds, "req/s")
            report.add(f"{n}.http_ms.median", median(lat), "ms")
            report.add(f"{n}.http_ms.p95", float(np.percentile(lat, 95)), "ms")
            report.add(
                f"{n}.p95_vs_single_median",
                float(np.percentile(lat, 95)) / fresh,
                "x",
                "both without keep-alive",
            )
    report.save(args.json)
    return report


if __name__ == "__main__":
    main()
