"""A retro-hunt's candidates fetched again for verification: hosts side by side, one
host's items one after another, and a host that does not answer tried only once. Real
servers on 127.0.0.1: two slow photo hosts and one that accepts and never answers."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web
from ansim.pipeline.recheck_service import RecheckFetch
from ansim.pipeline.retrohunt import RefetchingHistoryReader, history_banks
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import ScannedItem

from tests.helpers import photo_like
from tests.localserve import LocalServer

SLOW_ANSWER_S = 0.4


@pytest.fixture
def workspace(ansim_home: Path):
    ws, _ = init_workspace()
    yield ws
    ws.close()


def slow_photo_host(photos: dict[str, bytes], requests: list[tuple[float, float]]):
    async def photo(request: web.Request) -> web.Response:
        started = time.monotonic()
        await asyncio.sleep(SLOW_ANSWER_S)
        requests.append((started, time.monotonic()))
        return web.Response(body=photos[request.match_info["name"]], content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/i/{name}", photo)
    return LocalServer(app)


class SilentHost:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def _items(workspace, rows: list[tuple[str, str | None]]) -> list[int]:
    with workspace.session() as session:
        items = [ScannedItem(location=url, modality="image", sha256=sha) for url, sha in rows]
        session.add_all(items)
        session.flush()
        return [item.id for item in items]


def test_candidates_are_fetched_host_by_host_side_by_side(workspace, tmp_path: Path) -> None:
    photos = {}
    for n in range(4):
        path = photo_like(tmp_path / f"p{n}.png", seed=40 + n)
        jpeg = tmp_path / f"p{n}.jpg"
        from PIL import Image

        Image.open(path).convert("RGB").save(jpeg, quality=90)
        photos[f"{n}.jpg"] = jpeg.read_bytes()
    first_requests: list[tuple[float, float]] = []
    second_requests: list[tuple[float, float]] = []
    silent = SilentHost()
    with (
        slow_photo_host(photos, first_requests) as first,
        slow_photo_host(photos, second_requests) as second,
    ):
        rows = [
            (first.url(f"/i/{n}.jpg"), hashlib.sha256(photos[f"{n}.jpg"]).hexdigest())
            for n in (0, 1)
        ]
        rows += [
            (second.url(f"/i/{n}.jpg"), hashlib.sha256(photos[f"{n}.jpg"]).hexdigest())
            for n in (2, 3)
        ]
        rows += [(f"http://127.0.0.1:{silent.port}/i/{n}.jpg", None) for n in range(3)]
        rows += [(str(tmp_path / "p0.jpg"), None)]  # a scanned file: nothing to fetch
        ids = _items(workspace, rows)
        fetching = RecheckFetch(allow_loopback=True, min_delay_s=0.0, timeout_s=1.0)
        with workspace.session() as session:
            reader = RefetchingHistoryReader(session, history_banks(workspace), fetching)
            features = reader.local_features_of(set(ids))
            refetched = dict(reader.refetched)
            # Asked again, nothing is fetched twice.
            assert set(reader.local_features_of(set(ids[:4]))) == set(ids[:4])
    silent.close()

    assert set(features) == set(ids[:4])  # the four photos, verified on their fresh bytes
    assert all(refetched[i].verdict == "online" for i in ids[:4])
    assert ids[7] not in refetched
    # The silent host was tried once; its other items share that answer.
    assert len(silent.accepted) == 1
    down = [refetched[i] for i in ids[4:7]]
    assert all(r.verdict == "unreachable" and r.reason.startswith("timeout") for r in down)
    assert sum("(the host, for this hunt's later items)" in r.reason for r in down) == 2
    # One host's requests one after another, the two hosts side by side.
    for requests in (first_requests, second_requests):
        assert len(requests) == 2
        (a_start, a_end), (b_start, b_end) = sorted(requests)
        assert a_end <= b_start
    assert any(
        start < other_end and other_start < end
        for start, end in first_requests
        for other_start, other_end in second_requests
    )
