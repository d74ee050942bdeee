"""Shared pieces of the crawler tests: a fetcher tuned for quick hostile-site runs, and a
pinned DNS resolver (a real AbstractResolver over a fixed table, like /etc/hosts)."""

from __future__ import annotations

import socket
from pathlib import Path

from aiohttp.abc import AbstractResolver, ResolveResult
from ansim.crawler.fetch import Fetcher, FetchLimits
from ansim.crawler.guard import AddressPolicy
from ansim.crawler.politeness import Politeness, PolitenessConfig

QUICK_LIMITS = FetchLimits(
    connect_timeout_s=2,
    read_timeout_s=1,
    total_timeout_s=2,
    max_bytes=4 << 20,
    retries=2,
    backoff_base_s=0.05,
    max_retry_after_s=5,
)


def quick_fetcher(
    work_dir: Path | None = None,
    allow_loopback: bool = True,
    limits: FetchLimits = QUICK_LIMITS,
    politeness: PolitenessConfig | None = None,
    dns: AbstractResolver | None = None,
) -> Fetcher:
    return Fetcher(
        work_dir=work_dir,
        limits=limits,
        policy=AddressPolicy(allow_loopback=allow_loopback),
        politeness=Politeness(politeness or PolitenessConfig(min_delay_s=0)),
        dns=dns,
    )


class PinnedResolver(AbstractResolver):
    """Answers from a fixed name -> addresses table."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise OSError(f"pinned resolver has no {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        return None
