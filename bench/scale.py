"""Dense search at 10^3 ... 10^6 chunks: query latency, memory and build time, exact vs approximate (HNSW).

    .venv/bin/python -m bench.scale                      # 1e3,1e4,2.5e4,1e5,1e6 (~1 h, ~6 GB RAM)
    .venv/bin/python -m bench.scale --sizes 1e3,1e4,1e5  # smaller
    .venv/bin/python -m bench.scale --quick              # smoke run (seconds)

Everything goes through the product's own index code (``rag.indexing.vectors.build_vector_index`` and
``search``
with the product's candidate pool of 50). Vectors are real MiniLM vectors up to ``--real`` rows (default
60,000): the XQuAD de+en paragraphs and questions' contexts, then paragraphs of the Python standard
library's docstrings, embedded once by the product's embedder and cached in ``bench/results/``. Beyond
that they are synthetic but shaped like the real ones: ``normalise(r_i + 0.6 r_j + 0.6 g)`` for random
real rows ``r_i, r_j`` and a random unit vector ``g``. Queries are the 1,224 real XQuAD questions.

Recall@10 of the approximate index is against exact search over the same vectors, counting a returned
vector whose exact cosine ties the 10th best (within 1e-6) as a hit (duplicates make ties).
"""

from __future__ import annotations

import ast
import gc
import sysconfig
from pathlib import Path

import faiss
import numpy as np

from bench.common import (
    RESULTS,
    XQUAD_EN,
    Report,
    is_fake,
    median,
    model_name,
    note,
    parser,
    peak_rss_mb,
    rss_mb,
    timed,
    xquad,
)

POOL = 50  # the product's candidate pool (Settings.candidates)
SWEEP = (64, 128, 256, 512)  # HNSW search widths (efSearch)


def _docstring_paragraphs(limit: int) -> list[str]:
    """Paragraphs (>= 6 words) of the standard library's docstrings, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: dict[str, None] = {}
    for path in sorted(root.rglob("*.py")):
        if {"test", "tests", "idlelib"} & set(path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                for para in (ast.get_docstring(node) or "").split("\n\n"):
                    text = " ".join(para.split())
                    if len(text.split()) >= 6:
                        seen.setdefault(text, None)
                        if len(seen) >= limit:
                            return list(seen)
    return list(seen)


def real_vectors(model: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` real document vectors and the real question vectors (cached per model and count)."""
    from rag.embedding.base import create_embedder

    slug = model.replace("/", "_").replace(":", "_")
    cache = RESULTS / f"real-vectors-{slug}-{count}.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["docs"], data["queries"]
    de, en = xquad(), xquad(questions_from=XQUAD_EN)
    texts = [p for a in de.articles for p in a.text.split("\n\n")]
    texts += _docstring_paragraphs(max(0, count - len(texts)))
    texts = texts[:count]
    questions = [q.text for q in de.questions] + [q.text for q in en.questions]
    embedder = create_embedder(model, cache_dir=RESULTS / "models")
    note(f"embedding {len(texts)} real texts once (cached in {cache}) ...")
    docs = embedder.embed_documents(texts)
    queries = embedder.embed_queries(questions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(cache, docs=docs, queries=queries)
    return docs, queries


def synthetic(real: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` vectors shaped like ``real``: a real row, plus 0.6 of another and 0.6 of a random unit."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, real.shape[1]), dtype=np.float32)
    step = 100_000
    for at in range(0, count, step):
        n = min(step, count - at)
        noise = rng.standard_normal((n, real.shape[1])).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        block = real[rng.integers(0, len(real), n)] + 0.6 * real[rng.integers(0, len(real), n)] + 0.6 * noise
        out[at : at + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latencies_ms(index: object, queries: np.ndarray) -> list[float]:
    search = index.search  # type: ignore[attr-defined]
    search(queries[:1], POOL)
    return [timed(lambda q=q: search(q[None, :], POOL), collect=False)[0] * 1000 for q in queries]


def recall_at_10(exact: object, approx: object, queries: np.ndarray) -> float:
    want, _ = exact.search(queries, POOL)  # type: ignore[attr-defined]
    got, _ = approx.search(queries, POOL)  # type: ignore[attr-defined]
    tenth = want[:, 9:10] - 1e-6
    return float((got[:, :10] >= tenth).sum() / (10 * len(queries)))


def measure(report: Report, label: str, base: np.ndarray, queries: np.ndarray, approximate: bool) -> object:
    from rag.indexing.vectors import build_vector_index

    seconds, index = timed(
        lambda: build_vector_index(base, approximate_above=0 if approximate else len(base))
    )
    # the index's own size (its serialised form: vectors, ids, centroids), not an RSS difference, which
    # the allocator's reuse of freed memory makes unreliable; the process's peak RSS is reported too
    grown = faiss.serialize_index(index._index).nbytes / 2**20  # type: ignore[attr-defined]
    lat = latencies_ms(index, queries)
    kind = index.kind  # type: ignore[attr-defined]
    report.add(f"{label}.{kind}.build_s", seconds, "s")
    report.add(f"{label}.{kind}.query_ms.median", median(lat), "ms")
    report.add(f"{label}.{kind}.query_ms.p95", float(np.percentile(lat, 95)), "ms")
    report.add(f"{label}.{kind}.index_mb", grown, "MB", f"{grown * 2**20 / len(base):.0f} bytes per vector")
    return index


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1e3,1e4,2.5e4,1e5,1e6", help="Comma-separated chunk counts.")
    p.add_argument("--real", type=int, default=60_000, help="Real vectors to embed (once, cached).")
    p.add_argument("--queries", type=int, default=300, help="Queries timed per index.")
    p.add_argument("--approx-max", type=float, default=1e6, help="Largest size to build HNSW for.")
    args = p.parse_args(argv)
    from rag.indexing.vectors import APPROXIMATE_ABOVE

    model = model_name()
    sizes = [1000, 3000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    real_count = 400 if args.quick or is_fake(model) else args.real
    docs, all_queries = real_vectors(model, real_count)
    queries = all_queries[: 20 if args.quick else args.queries]
    report = Report(f"dense search at scale ({model}); approximate above {APPROXIMATE_ABOVE} chunks")
    report.add("real_vectors", len(docs))
    report.add("process_rss_mb_before", rss_mb(), "MB")
    for n in sizes:
        base = docs[:n] if n <= len(docs) else np.concatenate([docs, synthetic(docs, n - len(docs))])
        label = f"n={n}"
        report.add(f"{label}.real_share", min(1.0, len(docs) / n))
        exact = measure(report, label, base, queries, approximate=False)
        approx = measure(report, label, base, queries, approximate=True) if n <= args.approx_max else None
        if approx is not None:
            report.add(f"{label}.hnsw.recall@10", recall_at_10(exact, approx, all_queries))
            chosen = approx.ef_search  # type: ignore[attr-defined]
            for ef in SWEEP:  # how recall and latency trade at other search widths
                approx.ef_search = ef  # type: ignore[attr-defined]
                recall = recall_at_10(exact, approx, all_queries)
                ms = median(latencies_ms(approx, queries[:100]))
                report.add(f"{label}.hnsw.ef{ef}", f"recall@10 {recall:.4f}, {ms:.2f} ms")
            approx.ef_search = chosen  # type: ignore[attr-defined]
        del exact, approx, base
        gc.collect()
        report.add(f"{label}.process_peak_rss_mb", peak_rss_mb(), "MB", "the whole bench process so far")
    report.save(args.json)
    return report


if __name__ == "__main__":
    main()
