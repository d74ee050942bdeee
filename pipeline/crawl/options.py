"""The crawl's settings: one dataclass, stored with the run (JSON) so `--resume` continues
with exactly what the run started with."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ansim.casework.errors import CaseworkError
from ansim.crawler.fetch import FetchLimits
from ansim.crawler.politeness import PolitenessConfig
from ansim.crawler.urls import Scope, normalize_url

IMAGE_VERIFICATION = ("triage", "all", "off")
ENGINES = ("local", "ray")


@dataclass
class CrawlOptions:
    seeds: list[str] = field(default_factory=list)
    max_pages: int = 1000
    max_depth: int = 3
    scope: str = "same-site"
    allow_hosts: list[str] = field(default_factory=list)
    allow_loopback: bool = False
    ignore_robots_hosts: list[str] = field(default_factory=list)
    max_response_bytes: int = 64 << 20
    max_crawl_bytes: int = 20 << 30
    workers: int = 16
    host_concurrency: int = 4
    min_delay_s: float = 0.25
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    retries: int = 2
    # Processes fingerprinting media: 0 one per CPU; 1 a thread (no start-up cost, for
    # small scans and tests).
    hash_processes: int = 0
    # Local-feature verification of crawled images against the references (ORB, the
    # dearest image signal): "all" every image (as `ansim scan`), "triage" only images
    # with a candidate that PDQ or the descriptor leave open now, "off" none (PDQ and
    # descriptor decide alone). The history keeps no ORB features in any mode: a later
    # retro-hunt fetches its candidates again and computes them (`pipeline.retrohunt`).
    image_verification: str = "all"
    # Where fetched items are hashed, matched and parsed: "local" worker processes, or
    # "ray" actors on the cluster at `ray_address` (None: a local Ray started by the crawl).
    engine: str = "local"
    ray_address: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CrawlOptions:
        return cls(**json.loads(text))

    def check(self) -> None:
        """Refuse settings a crawl cannot run with, before anything is stored."""
        if self.image_verification not in IMAGE_VERIFICATION:
            raise CaseworkError(
                f"image verification must be one of {', '.join(IMAGE_VERIFICATION)}, "
                f"not {self.image_verification!r}"
            )
        if self.engine not in ENGINES:
            raise CaseworkError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        try:
            Scope(self.scope)
        except ValueError as exc:
            raise CaseworkError(str(exc)) from exc

    def crawl_scope(self) -> Scope:
        """The scope with every seed's site in it (raises ValueError for an unknown mode)."""
        scope = Scope(self.scope, set(self.allow_hosts))
        for seed in self.seeds:
            if normalized := normalize_url(seed):
                scope.add_seed(normalized)
        return scope

    def fetch_limits(self) -> FetchLimits:
        return FetchLimits(
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            total_timeout_s=self.total_timeout_s,
            max_bytes=self.max_response_bytes,
            retries=self.retries,
        )

    def politeness(self) -> PolitenessConfig:
        return PolitenessConfig(
            concurrency_per_host=self.host_concurrency, min_delay_s=self.min_delay_s
        )
