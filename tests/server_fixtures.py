"""A server home for the server tests: accounts of every role, a queue item found at a
URL with sealed evidence of it (written by the real EvidenceStore), and helpers to sign in."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ansim.casework.workspace import Workspace
from ansim.crawler.evidence import EvidenceStore
from ansim.crawler.fetch import Exchange, FetchResult
from ansim.pipeline.workspaces import init_workspace
from ansim.server import accounts
from ansim.server.app import ServerSettings, create_app
from ansim.store.tables import Evidence, Takedown
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.casework_fixtures import as_analyst, found_at, open_case_with_reference, reposted_copy

PASSWORD = "correct horse battery staple"
PEOPLE = {"alice": "analyst", "bob": "analyst", "sue": "supervisor", "ada": "admin"}
PSEUDONYM, CONTACT = "Blue-홍길동", "010-1234-5678"
HOSTILE_URL = "https://bad.example/<script>alert(1)</script>/\u202egpj.exe?x=[/b]"
HOSTILE_LABEL = "<img src=x onerror=alert(2)>[/b]\u202eevil"


@dataclass
class ServerHome:
    workspace: Workspace
    tokens: dict[str, str]
    item_id: int
    copy: Path
    reference: Path
    case_id: str
    hostile_item_id: int
    extra: dict[str, object] = field(default_factory=dict)


def seal_evidence(workspace: Workspace, takedown_id: int, media: Path, url: str) -> None:
    """Sealed evidence of `media` fetched from `url`, as a crawl records it."""
    now, size = datetime.now(UTC), media.stat().st_size
    exchange = Exchange(
        method="GET", url=url, request_headers=[("User-Agent", "ansim-test")], status=200,
        reason="OK", http_version="HTTP/1.1",
        response_headers=[("Content-Type", "image/jpeg"), ("Content-Length", str(size))],
        fetched_at=now, resolved_ip="127.0.0.1", raw_path=media, raw_size=size,
        raw_sha256=hashlib.sha256(media.read_bytes()).hexdigest(),  # the manifest's digest
    )  # fmt: skip
    fetch = FetchResult(url=url, outcome="ok", status=200, content_type="image/jpeg",
                        body_path=media, size=size, exchanges=[exchange])  # fmt: skip
    store = EvidenceStore(workspace.home.root / "evidence", workspace.cipher.fernet())
    info = store.write_bundle([("media", fetch)], note="test evidence")
    with workspace.store.session() as session:
        session.add(
            Evidence(
                bundle_id=info.bundle_id, takedown_id=takedown_id, media_url=url,
                warc_sha256=info.warc_sha256, records=info.records,
            )
        )  # fmt: skip


def build_home(tmp_path: Path) -> ServerHome:
    workspace, _ = init_workspace()
    for name, role in PEOPLE.items():
        accounts.add_user(workspace, name, role, PASSWORD)
    accounts.add_user(workspace, "coop", "partner", None)
    accounts.add_user(workspace, "temp", "analyst", PASSWORD)
    tokens = {
        name: accounts.create_token(workspace, name, "tests")["token"] for name in [*PEOPLE, "coop"]
    }
    intake_as = as_analyst(workspace, "sue")
    case_id, _, reference = open_case_with_reference(intake_as, tmp_path / "media", seed=11)
    copy = reposted_copy(reference, tmp_path / "media" / "copy.jpg")
    [item_id] = found_at(intake_as, copy, "https://images.example/found/copy.jpg")
    seal_evidence(workspace, item_id, copy, "https://images.example/found/copy.jpg")
    # A second case whose item sits at a hostile URL, matching a hostile-labelled reference.
    hostile_case, hostile_ref, hostile_media = open_case_with_reference(
        intake_as, tmp_path / "hostile", seed=12
    )
    from ansim.store.tables import Reference

    with workspace.store.session() as session:
        session.get(Reference, hostile_ref).label = HOSTILE_LABEL
    hostile_copy = reposted_copy(hostile_media, tmp_path / "hostile" / "copy.jpg")
    [hostile_id] = found_at(intake_as, hostile_copy, "https://bad.example/x.jpg")
    with workspace.store.session() as session:
        session.get(Takedown, hostile_id).location = HOSTILE_URL
    return ServerHome(workspace, tokens, item_id, copy, reference, case_id, hostile_id)


@contextmanager
def served_home(tmp_path: Path) -> Iterator[ServerHome]:
    """A built home, closed afterwards (each test module wraps it in its own fixture)."""
    home = build_home(tmp_path)
    try:
        yield home
    finally:
        home.workspace.close()


def ready_app(
    workspace: Workspace, settings: ServerSettings | None = None, tls: bool = False
) -> Starlette:
    app = create_app(workspace, settings, tls=tls)
    assert app.state.server.index_ready.wait(120), app.state.server.index_error
    return app


def client_for(app: Starlette, **options: object) -> TestClient:
    return TestClient(app, follow_redirects=False, **options)  # type: ignore[arg-type]


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]*)"')


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    login_csrf = CSRF_INPUT.search(page.text).group(1)  # type: ignore[union-attr]
    done = client.post(
        "/login", data={"csrf": login_csrf, "name": name, "password": password, "next": "/queue"}
    )
    assert done.status_code == 303, done.text
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    page = client.get("/queue")
    return CSRF_META.search(page.text).group(1)  # type: ignore[union-attr]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """The app on a real uvicorn server on 127.0.0.1, in a thread."""

    def __init__(self, app: Starlette) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(600):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
