"""Load on the HMA-compatible API: `/m/lookup` requests a second and latency against a
PDQ bank of N entries, served by a real `ansim serve` process on 127.0.0.1.

The bank is synthetic (uniformly random 256-bit hashes, which is what PDQ hashes of
unrelated pictures look like to an index); a tenth of the queries are near copies of
banked hashes (a few bits flipped) and must come back as matches, the rest miss.
Every lookup is authenticated with a partner token and audited, as in production.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ansim.pipeline.workspaces import init_workspace
from ansim.server import accounts
from ansim.server.tables import HmaBank, HmaBankContent
from ansim.settings import variable
from ansim.store.home import Home
from ansim.store.tables import Case, Reference, Signal
from sqlalchemy import func, insert, select

BANK_NAME = "BENCH_BANK"
INSERT_BATCH = 50_000


@dataclass
class LoadResult:
    entries: int
    build_s: float
    index_load_s: float
    requests: int
    errors: int
    seconds: float
    concurrency: int
    p50_ms: float
    p99_ms: float
    near_copies_found: int
    near_copies_sent: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "requests_per_second": round(self.per_second, 1)}


def build_bank(root: Path, entries: int, seed: int = 7) -> tuple[np.ndarray, str, float]:
    """A home whose one HMA bank holds `entries` PDQ hashes; returns (hashes, partner token,
    seconds it took). Rows go in with bulk inserts (the intake path hashes files one by one).
    A home built before with the same size is reused (the hashes come from the same seed)."""
    started = time.monotonic()
    home = Home(root=root, db_url=f"sqlite:///{root / 'ansim.db'}")
    workspace, _ = init_workspace(home)
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, size=(entries, 32), dtype=np.uint8)
    with workspace.store.read_session() as session:
        built = session.execute(select(func.count(HmaBankContent.id))).scalar_one()
    if built == entries:
        token = accounts.create_token(workspace, "bench-partner", "bench")["token"]
        workspace.close()
        return hashes, token, time.monotonic() - started
    if built:
        raise ValueError(f"{root} holds a bench bank of {built} entries, not {entries}")
    with workspace.store.session() as session:
        session.add(Case(id="C-BENCH-0001", case_type="other"))
        session.flush()
        bank = HmaBank(name=BANK_NAME, case_id="C-BENCH-0001")
        session.add(bank)
        session.flush()
        bank_id = bank.id
    content_ids = rng.choice(2**53 - 1, size=entries, replace=False) + 1
    for start in range(0, entries, INSERT_BATCH):
        stop = min(entries, start + INSERT_BATCH)
        ids = range(start + 1, stop + 1)
        with workspace.store.session() as session:
            session.execute(
                insert(Reference),
                [{"id": i, "case_id": "C-BENCH-0001", "modality": "image", "origin": "import",
                  "added_by": "bench"} for i in ids],
            )  # fmt: skip
            session.execute(
                insert(Signal),
                [{"id": i, "reference_id": i, "kind": "pdq", "value": hashes[i - 1].tobytes().hex(),
                  "quality": 100} for i in ids],
            )  # fmt: skip
            session.execute(
                insert(HmaBankContent),
                [{"id": int(content_ids[i - 1]), "bank_id": bank_id, "reference_id": i,
                  "enabled": True} for i in ids],
            )  # fmt: skip
    accounts.add_user(workspace, "bench-partner", "partner", None)
    token = accounts.create_token(workspace, "bench-partner", "bench")["token"]
    with workspace.store.read_session() as session:
        workspace.banks.index(session, "pdq")  # built from the store, as a server would
    workspace.close()
    return hashes, token, time.monotonic() - started


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _queries(hashes: np.ndarray, count: int, seed: int = 11) -> tuple[list[str], int]:
    """`count` query hashes, every tenth a banked hash with 8 of its bits flipped."""
    rng = np.random.default_rng(seed)
    queries, near = [], 0
    for position in range(count):
        if position % 10 == 0:
            value = hashes[rng.integers(len(hashes))].copy()
            for bit in rng.choice(256, size=8, replace=False):
                value[bit // 8] ^= 1 << (bit % 8)
            near += 1
        else:
            value = rng.integers(0, 256, size=32, dtype=np.uint8)
        queries.append(value.tobytes().hex())
    return queries, near


async def _hammer(
    base: str, token: str, queries: list[str], seconds: float, concurrency: int
) -> tuple[list[float], int, int]:
    import aiohttp

    latencies: list[float] = []
    errors = found = 0
    deadline = time.monotonic() + seconds
    position = 0
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors, found, position
        while time.monotonic() < deadline:
            index = position
            position += 1
            query = queries[index % len(queries)]
            sent = time.monotonic()
            async with session.get(
                f"{base}/m/lookup", params={"signal_type": "pdq", "signal": query}, headers=headers
            ) as response:
                body = await response.json() if response.status == 200 else {}
            latencies.append(time.monotonic() - sent)
            if response.status != 200:
                errors += 1
            elif index % 10 == 0 and body.get(BANK_NAME):
                found += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies, errors, found


def run(root: Path, entries: int, seconds: float, concurrency: int) -> LoadResult:
    root.mkdir(parents=True, exist_ok=True)
    hashes, token, build_s = build_bank(root, entries)
    port = _free_port()
    env = {**os.environ, variable("home"): str(root)}
    env.pop(variable("db_url"), None)
    ansim = str(Path(sys.executable).parent / "ansim")
    started = time.monotonic()
    log = open(root / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [ansim, "serve", "--port", str(port), "--partner-rate", "1000000"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        for _ in range(1200):
            try:
                with urllib.request.urlopen(f"{base}/status", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.25)
            if server.poll() is not None:
                raise RuntimeError(f"ansim serve exited: {_tail(root / 'serve.log')}")
        else:
            raise RuntimeError("ansim serve did not become ready")
        index_load_s = time.monotonic() - started
        queries, _ = _queries(hashes, 20_000 + secrets.randbelow(2))
        clock = time.monotonic()
        latencies, errors, found = asyncio.run(_hammer(base, token, queries, seconds, concurrency))
        elapsed = time.monotonic() - clock
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    ordered = np.sort(np.array(latencies)) * 1000
    near_sent = sum(1 for i in range(len(latencies)) if i % 10 == 0)
    return LoadResult(
        entries=entries, build_s=round(build_s, 1), index_load_s=round(index_load_s, 1),
        requests=len(latencies), errors=errors, seconds=round(elapsed, 2), concurrency=concurrency,
        p50_ms=round(float(np.percentile(ordered, 50)), 2),
        p99_ms=round(float(np.percentile(ordered, 99)), 2),
        near_copies_found=found, near_copies_sent=near_sent,
    )  # fmt: skip
