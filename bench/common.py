"""Shared helpers of the benchmark scripts: robust statistics, timing, and corpora built from XQuAD.

Every script reports medians over several runs and, where the issue asks for it, a ratio against the raw
model measured in the same process and the same run, so a noisy machine moves both sides together.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.evaluation.squad import Article, SquadSet

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = ROOT / "bench" / "data"
XQUAD_DE = BENCH_DATA / "xquad-de-dev.json"
XQUAD_EN = BENCH_DATA / "xquad-en-dev.json"
SEED_CORPUS = ROOT / "corpus"
RESULTS = ROOT / "bench" / "results"


# --- statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def timed(fn: Callable[[], Any], collect: bool = True) -> tuple[float, Any]:
    """Seconds one call of ``fn`` takes; with ``collect``, garbage is collected first so that a collection
    is not billed to it (off for millisecond calls in a loop, where a full collection costs more)."""
    if collect:
        gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's current resident set size in MB (from /proc; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- command line and output


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="A tiny run that only checks the script works.")
    p.add_argument("--runs", type=int, default=None, help="Timed runs per figure (medians are reported).")
    p.add_argument("--json", type=Path, default=None, help="Also write the figures to this JSON file.")
    return p


def model_name() -> str:
    """The embedding model the product is configured with (``RAG_MODEL``; multilingual-e5-small default)."""
    from rag.settings import Settings

    return Settings().embedding.model


def is_fake(model: str) -> bool:
    return model.startswith("test:")


def is_e5(model: str) -> bool:
    from rag.embedding.e5_convert import NAMES

    return model in NAMES


def session_encoder(embedder: Any) -> Callable[[str], Any]:
    """The fastest raw query encode of the product's model: its own one-thread ONNX session called directly
    on the tokenizer's ids, the prompt included, with no :class:`~rag.embedding.base.Embedder`
    method around it.
    For a backend without a session (torch, the test fake) it is ``embed_queries`` of one question."""
    import numpy as np

    from rag.embedding.e5 import E5Embedder
    from rag.embedding.e5_tokenizer import QUERY_PROMPT
    from rag.embedding.onnx import OnnxEmbedder
    from rag.embedding.onnx_runtime import tokenize

    embedder.warm_up()
    inner = embedder._active() if hasattr(embedder, "_active") else embedder  # a FallbackEmbedder's choice
    if isinstance(inner, E5Embedder):
        model = inner._load()  # the bench reads the product's own session: private on purpose

        def e5(question: str) -> Any:
            ids = np.array(model.tokenizer.encode([question], QUERY_PROMPT), dtype=np.int64)
            return model.sessions.single.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})

        return e5
    if isinstance(inner, OnnxEmbedder):
        loaded = inner._load()

        def onnx(question: str) -> Any:
            ids, mask, types = tokenize(loaded.tokenizer, [question])
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            return loaded.sessions.single.run(None, feed)

        return onnx
    return lambda question: embedder.embed_queries([question])


@dataclass
class Report:
    """Figures printed as ``name: value unit`` lines, and optionally written as JSON."""

    title: str

    def __post_init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self.load_at_start = os.getloadavg()[0]
        print(f"# {self.title}", flush=True)
        print(
            f"# {os.cpu_count()} CPUs, load average {self.load_at_start:.1f} (other work shares them)",
            flush=True,
        )

    def add(self, name: str, value: Any, unit: str = "", note: str = "") -> None:
        self.figures[name] = value
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        extra = f"  ({note})" if note else ""
        print(f"{name}: {shown}{(' ' + unit) if unit else ''}{extra}", flush=True)

    def save(self, path: Path | None) -> None:
        load = {
            "cpus": os.cpu_count(),
            "load_average_at_start": self.load_at_start,
            "at_end": os.getloadavg()[0],
        }
        print(f"# load average at the end {load['at_end']:.1f}", flush=True)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps({"title": self.title, "machine": load, **self.figures}, indent=2) + "\n"
            )


def note(text: str) -> None:
    """Progress notes go to stderr so stdout holds only the figures."""
    print(text, file=sys.stderr, flush=True)


@contextmanager
def quiet_logs() -> Iterator[None]:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    yield


# --- data


def xquad(path: Path = XQUAD_DE, questions_from: Path | None = None) -> SquadSet:
    """The articles and questions of a SQuAD file, read exactly as ``rag eval`` reads them."""
    from rag.evaluation.squad import load_squad, read_json

    return load_squad(read_json(path), read_json(questions_from) if questions_from else None)


def variant(article: Article, copy: int) -> Article:
    """Copy number ``copy`` of an article with changed text, so that no two files of a big corpus are equal.

    The paragraphs are rotated by ``copy`` and each is led by a sentence naming the copy: every chunk text
    differs from the original's and is embedded on its own, as a distinct article's would be.
    """
    from rag.evaluation.squad import PARAGRAPH_SEP, Article
    from rag.ingest.loading import doc_id_for

    if copy == 0:
        return article
    paragraphs = article.text.split(PARAGRAPH_SEP)
    turn = copy % len(paragraphs)
    rotated = paragraphs[turn:] + paragraphs[:turn]
    text = PARAGRAPH_SEP.join(f"Fassung {copy} des Berichts. {p}" for p in rotated)
    filename = f"c{copy:04d}_{article.filename}"
    return Article(doc_id_for(filename), filename, f"{article.title} ({copy})", text)


def articles(squad: SquadSet, count: int) -> list[Article]:
    """``count`` articles: the file's own, then variants of them in turn (see :func:`variant`)."""
    base = squad.articles
    return [variant(base[i % len(base)], i // len(base)) for i in range(count)]


def write_corpus(folder: Path, chosen: Sequence[Article]) -> Path:
    """One file per article under ``folder`` (the evaluation's own writer); returns ``folder``."""
    from rag.evaluation.squad import write_corpus as write

    write(chosen, folder)
    return folder


def run_clients(client: Callable[[int], None], clients: int, barrier: threading.Barrier) -> float:
    """Run ``client(0..clients-1)`` on threads that start together at ``barrier`` (which has
    ``clients + 1`` parties: this thread is the last); returns the seconds until all finished."""
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started


# --- a server in a child process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[Any], log: Path, timeout: float = 600) -> None:
    """Wait until ``GET {url}/health`` answers 200; raise with the tail of ``log`` if the server exits or
    is not ready within ``timeout`` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server was not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


@contextmanager
def rag_serve(
    corpus: Path, index: Path, log: Path, env: dict[str, str], timeout: float = 600
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``rag serve`` over ``corpus`` on a free port, its output in ``log``, with environment ``env``; yields
    its URL and process once ``/health`` answers (``RuntimeError`` if it does not: see :func:`wait_ready`)
    and stops it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--corpus", str(corpus),
           "--index", str(index)]  # fmt: skip
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log, timeout)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
