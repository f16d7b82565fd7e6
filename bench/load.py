"""Load benchmark: concurrent clients ask over HTTP while an article is uploaded and deleted mid-run.

    .venv/bin/python -m bench.load                      # 16 clients x 200 requests, the real model
    .venv/bin/python -m bench.load --clients 4 --requests 50 --model test:words

It serves a fresh copy of the seed corpus with ``rag serve`` on a free loopback port (``corpus/`` itself
is never written to; the index under the work folder persists, so the ONNX export is made once). Before
the run each question is asked alone, with and without the extra article; under load every answer must
equal one of those two solo answers (the index a request saw is the one before or after the upload, never
half of one), else it is a mismatch. Prints throughput, latency percentiles, errors and mismatches, and
exits 1 on any error or mismatch. ``--url`` and ``--key`` point it at a server that is already running.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import RESULTS, SEED_CORPUS, rag_serve

ARTICLE_NAME = "leuchtturmmuseum.txt"
ARTICLE = (
    "Die Stadt Beispielhausen eröffnete im Jahr 1999 ein Museum für Leuchttürme.\n\n"
    "Das Leuchtturmmuseum zeigt 42 Modelle aus aller Welt und zieht jedes Jahr viele Besucher an.\n"
)
QUESTIONS: list[dict[str, Any]] = [
    {"question": "Wann wurde Nordkorea gegründet?"},
    {"question": "Wer ist der russische UN-Botschafter?"},
    {"question": "Wogegen hat Russland sein Veto eingelegt?", "top_k": 3},
    {"question": "Was hat Putin mit Kim in Pjöngjang unterzeichnet?"},
    {"question": "Who is Maria Zakharova?"},
    {"question": "Wie hoch ist der Eiffelturm in Paris?"},  # the articles do not say: an abstention
    {
        "question": "Und wann war das?",  # a follow-up, resolved from the history
        "history": [{"role": "user", "content": "Wogegen hat Russland sein Veto eingelegt?"}],
    },
    {"question": "Wie viele Modelle zeigt das Leuchtturmmuseum?"},  # answered only while the article is in
]


@dataclass
class Result:
    clients: int
    requests: int
    seconds: float = 0.0
    throughput: float = 0.0  # requests per second
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0
    errors: int = 0
    mismatches: int = 0
    saw_article: int = 0  # answers that came from the index with the uploaded article in it
    upload_status: int = 0
    upload_ms: float = 0.0
    delete_status: int = 0
    delete_ms: float = 0.0
    samples: list[str] = field(default_factory=list)  # the first few errors and mismatches
    key_in_log: bool = False


@dataclass
class _Shared:
    """What the client threads write; guarded by ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    mismatches: int = 0
    saw_article: int = 0
    samples: list[str] = field(default_factory=list)

    def note(self, sample: str) -> None:
        if len(self.samples) < 5:
            self.samples.append(sample[:300])


# --- the server


@contextmanager
def served(workdir: Path, model: str | None, key: str, log: Path) -> Iterator[str]:
    """``rag serve`` over a fresh copy of the seed corpus in ``workdir``; yields its URL."""
    corpus = workdir / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(SEED_CORPUS, corpus)
    env = {**os.environ, "RAG_API_KEY": key, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    if model:
        env["RAG_MODEL"] = model
    with rag_serve(corpus, workdir / "index", log, env) as (url, _):
        yield url


def _comparable(body: dict[str, Any]) -> str:
    """The answer without its timings, as canonical JSON."""
    return json.dumps({k: v for k, v in body.items() if k != "timings_ms"}, sort_keys=True)


def _solo(client: httpx.Client) -> list[str]:
    answers = []
    for payload in QUESTIONS:
        response = client.post("/ask", json=payload)
        response.raise_for_status()
        answers.append(_comparable(response.json()))
    return answers


def _upload(client: httpx.Client, key: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.post(
        "/documents", files={"file": (ARTICLE_NAME, ARTICLE.encode())}, headers={"X-API-Key": key}
    )
    return response, (time.perf_counter() - started) * 1000


def _delete(client: httpx.Client, key: str, doc_id: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.delete(f"/documents/{doc_id}", headers={"Authorization": f"Bearer {key}"})
    return response, (time.perf_counter() - started) * 1000


def _client(url: str, index: int, requests: int, without: list[str], with_: list[str], s: _Shared) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for j in range(requests):
            q = (index + j) % len(QUESTIONS)
            started = time.perf_counter()
            try:
                response = client.post("/ask", json=QUESTIONS[q])
                elapsed = time.perf_counter() - started
                body = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError) as exc:
                elapsed, body, response = time.perf_counter() - started, None, None
                error = f"{QUESTIONS[q]['question']!r}: {exc!r}"
            with s.lock:
                s.done += 1
                s.latencies.append(elapsed)
                if body is None:
                    s.errors += 1
                    s.note(error if response is None else f"HTTP {response.status_code}: {response.text}")
                    continue
                answer = _comparable(body)
                if answer == with_[q] and answer != without[q]:
                    s.saw_article += 1
                elif answer != without[q]:
                    s.mismatches += 1
                    s.note(f"{QUESTIONS[q]['question']!r} answered differently than alone: {answer}")


def _writer(url: str, key: str, total: int, s: _Shared, result: Result) -> None:
    """Upload the article once a third of the requests are done, delete it at two thirds."""
    with httpx.Client(base_url=url, timeout=300) as client:
        _wait_for(s, total // 3)
        response, result.upload_ms = _upload(client, key)
        result.upload_status = response.status_code
        if response.status_code != 201:
            s.note(f"upload: HTTP {response.status_code}: {response.text}")
            return
        _wait_for(s, 2 * total // 3)
        deleted, result.delete_ms = _delete(client, key, response.json()["doc_id"])
        result.delete_status = deleted.status_code


def _wait_for(s: _Shared, done: int) -> None:
    while True:
        with s.lock:
            if s.done >= done:
                return
        time.sleep(0.005)


def run_against(url: str, key: str, clients: int, requests: int) -> Result:
    """The benchmark against a running server whose write key is ``key``."""
    result = Result(clients, clients * requests)
    with httpx.Client(base_url=url, timeout=300) as client:
        without = _solo(client)
        added, _ = _upload(client, key)
        if added.status_code != 201:
            raise RuntimeError(f"uploading the test article failed: {added.status_code} {added.text}")
        with_ = _solo(client)
        _delete(client, key, added.json()["doc_id"])[0].raise_for_status()
        if _solo(client) != without:
            raise RuntimeError("deleting the article did not restore the answers asked alone before it")
    shared = _Shared()
    threads = [
        threading.Thread(target=_client, args=(url, i, requests, without, with_, shared))
        for i in range(clients)
    ]
    writer = threading.Thread(target=_writer, args=(url, key, clients * requests, shared, result))
    started = time.perf_counter()
    for t in [*threads, writer]:
        t.start()
    for t in [*threads, writer]:
        t.join()
    result.seconds = time.perf_counter() - started
    ms = [x * 1000 for x in shared.latencies]
    result.throughput = len(ms) / result.seconds
    result.p50_ms, result.p95_ms = (float(np.percentile(ms, q)) for q in (50, 95))
    result.max_ms = max(ms)
    result.errors, result.mismatches = shared.errors, shared.mismatches
    result.saw_article, result.samples = shared.saw_article, shared.samples
    return result


def run(clients: int, requests: int, model: str | None, workdir: Path) -> Result:
    """Start ``rag serve`` on a copy of the seed corpus, run the benchmark, stop the server."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    log = workdir / "server.log"
    with served(workdir, model, key, log) as url:
        result = run_against(url, key, clients, requests)
    result.key_in_log = key in log.read_text(errors="replace")
    return result


def report(result: Result) -> str:
    r = result
    lines = [
        f"{r.clients} clients x {r.requests // r.clients} requests = {r.requests} /ask in {r.seconds:.1f}s: "
        f"{r.throughput:.1f} requests/s",
        f"latency p50 {r.p50_ms:.0f} ms, p95 {r.p95_ms:.0f} ms, max {r.max_ms:.0f} ms",
        f"upload mid-run: HTTP {r.upload_status} in {r.upload_ms:.0f} ms; "
        f"delete: HTTP {r.delete_status} in {r.delete_ms:.0f} ms",
        f"failed requests: {r.errors}; answers unlike the solo answer: {r.mismatches}; "
        f"answers from the index with the article: {r.saw_article}",
        f"API key in the server log: {'YES' if r.key_in_log else 'no'}",
        *[f"  e.g. {s}" for s in r.samples],
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--model", default=None, help="RAG_MODEL for the server (default: the bundled one)")
    parser.add_argument("--workdir", type=Path, default=RESULTS / "load", help="corpus copy, index, log")
    parser.add_argument("--url", default=None, help="a running server instead (needs --key)")
    parser.add_argument("--key", default=None, help="the running server's RAG_API_KEY")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.url:
        if not args.key:
            parser.error("--url needs --key (the article is uploaded and deleted)")
        result = run_against(args.url.rstrip("/"), args.key, args.clients, args.requests)
    else:
        result = run(args.clients, args.requests, args.model, args.workdir)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    return 1 if result.errors or result.mismatches or result.key_in_log else 0


if __name__ == "__main__":
    sys.exit(main())
