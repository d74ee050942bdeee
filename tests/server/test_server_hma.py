"""The HMA-compatible API, driven as HMA's callers drive it: a curator banks an upload,
a platform hashes what its users upload and looks the hash up, the curator fetches and
deletes the banked content; partners only hash and look up, rate-limited and audited."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from ansim.server.app import ServerSettings
from ansim.server.tables import HmaBankContent
from ansim.store.tables import AuditEntry
from PIL import Image
from sqlalchemy import select

from tests.server_fixtures import bearer, client_for, ready_app, served_home

BANK = "CONSENTED_SHARING"


@pytest.fixture
def server_home(ansim_home, tmp_path):  # noqa: ANN001, ANN201
    with served_home(tmp_path) as home:
        yield home


def upload(path, field: str = "photo") -> dict:  # noqa: ANN001
    return {field: (path.name, path.read_bytes(), "application/octet-stream")}


def test_hma_client_session(server_home, tmp_path) -> None:  # noqa: ANN001
    app = ready_app(server_home.workspace)
    client = client_for(app)
    admin, curator, platform = (bearer(server_home.tokens[n]) for n in ("ada", "sue", "coop"))
    assert client.get("/status").text == "I-AM-ALIVE"
    created = client.post("/c/banks", json={"name": BANK}, headers=admin)
    assert created.status_code == 201
    assert created.json() == {"name": BANK, "matching_enabled_ratio": 1.0}
    assert client.post("/c/banks", json={"name": BANK}, headers=admin).status_code == 403
    assert client.get("/c/banks", headers=curator).json() == [created.json()]
    assert client.get(f"/c/bank/{BANK}", headers=curator).json()["name"] == BANK
    missing = client.get("/c/bank/NOPE", headers=curator)
    assert missing.status_code == 404 and missing.json() == {"message": "bank 'NOPE' not found"}

    # The platform hashes a user's upload and looks it up: nothing banked yet.
    reference = server_home.reference
    hashed = client.post("/h/hash", files=upload(reference), headers=platform)
    assert hashed.status_code == 200 and set(hashed.json()) == {"pdq"}
    pdq = hashed.json()["pdq"]
    assert len(pdq) == 64
    params = {"signal_type": "pdq", "signal": pdq}
    assert client.get("/m/lookup", params=params, headers=platform).json() == {}

    # The curator banks the victim's (consented) picture.
    added = client.post(f"/c/bank/{BANK}/content", files=upload(reference), headers=curator)
    assert added.status_code == 200, added.text
    content_id = added.json()["id"]
    assert isinstance(content_id, int) and added.json()["signals"]["pdq"] == pdq
    with server_home.workspace.store.session() as session:
        banked = session.get(HmaBankContent, content_id)
        assert banked is not None and content_id != banked.reference_id
        assert str(content_id) not in server_home.case_id

    # Now the lookup finds it, by hash and by upload of a re-encoded copy.
    found = client.get("/m/lookup", params=params, headers=platform).json()
    assert found == {BANK: [{"bank_content_id": content_id, "distance": "0"}]}
    by_upload = client.post("/m/lookup", files=upload(server_home.copy), headers=platform).json()
    [match] = by_upload["pdq"][BANK]
    assert match["bank_content_id"] == content_id and isinstance(match["distance"], str)
    assert 0 <= int(match["distance"]) <= 31
    raw = client.get(
        "/m/raw_lookup", params={**params, "include_distance": "true"}, headers=platform
    )
    assert raw.json() == {"matches": [{"bank_content_id": content_id, "distance": "0"}]}
    assert client.get("/m/raw_lookup", params=params, headers=platform).json() == {
        "matches": [content_id]
    }
    compared = client.post("/m/compare", json={"pdq": [pdq, pdq]}, headers=platform).json()
    assert compared == {"pdq": [True, {"distance": 0}]}
    status = client.get("/m/index/status", headers=platform).json()
    assert status["pdq"]["present"] is True and status["pdq"]["size"] == 1

    fetched = client.get(
        f"/c/bank/{BANK}/content/{content_id}", params={"signal_type": "pdq"}, headers=curator
    ).json()
    assert fetched == {
        "id": content_id, "bank": BANK, "enabled": True, "original_media_uri": None,
        "signals": {"pdq": pdq},
    }  # fmt: skip
    deleted = client.delete(f"/c/bank/{BANK}/content/{content_id}", headers=curator)
    assert deleted.json() == {"deleted": 1}
    assert client.get("/m/lookup", params=params, headers=platform).json() == {}
    gone = client.get(f"/c/bank/{BANK}/content/{content_id}", headers=curator)
    assert gone.status_code == 404 and "message" in gone.json()

    # Banking a hash directly, and refusals in HMA's shape.
    by_signal = client.post(f"/c/bank/{BANK}/signal", json={"pdq": pdq}, headers=curator).json()
    assert by_signal["signals"] == {"pdq": pdq}
    bad = client.get("/m/lookup", params={"signal_type": "pdq", "signal": "xyz"}, headers=platform)
    assert bad.status_code == 400 and bad.json()["message"].startswith("invalid signal")
    unknown = client.get(
        "/m/lookup", params={"signal_type": "tmk", "signal": pdq}, headers=platform
    )
    assert unknown.json() == {"message": "No such SignalType 'tmk'"}

    app.state.server.lookups.flush(server_home.workspace)  # as the server does when it stops
    with server_home.workspace.store.session() as session:
        hits = list(
            session.execute(select(AuditEntry).where(AuditEntry.action == "hma.lookup")).scalars()
        )
        misses = list(
            session.execute(
                select(AuditEntry).where(AuditEntry.action == "hma.lookup.misses")
            ).scalars()
        )
    assert {e.actor for e in hits} == {"coop"} and len(hits) == 4  # lookup x2, raw_lookup x2
    assert [json.loads(e.detail)["lookups"] for e in misses] == [2]  # before banking, after delete
    assert all(pdq not in e.detail for e in hits + misses)


def test_partner_may_only_hash_and_look_up_and_is_rate_limited(server_home) -> None:  # noqa: ANN001
    app = ready_app(server_home.workspace, ServerSettings(partner_rate=0.01, partner_burst=3))
    client = client_for(app)
    partner = bearer(server_home.tokens["coop"])
    assert client.get("/c/banks", headers=partner).status_code == 403
    refused = client.post("/c/bank/X/signal", json={"pdq": "0" * 64}, headers=partner)
    assert refused.status_code == 403 and "message" in refused.json()
    assert client.get("/queue", headers=partner).status_code == 403
    for _ in range(3):  # the burst
        assert client.get("/m/index/status", headers=partner).status_code == 200
    limited = client.get("/m/index/status", headers=partner)
    assert limited.status_code == 429 and limited.json() == {"message": "rate limit exceeded"}
    assert int(limited.headers["retry-after"]) >= 1
    # Staff are not rate-limited like partners.
    for _ in range(5):
        assert (
            client.get("/m/index/status", headers=bearer(server_home.tokens["alice"])).status_code
            == 200
        )


def test_no_auth_mode_only_for_loopback_and_503_while_loading(server_home) -> None:  # noqa: ANN001
    params = {"signal_type": "pdq", "signal": "0" * 64}
    closed = client_for(ready_app(server_home.workspace), client=("127.0.0.1", 40000))
    assert closed.get("/m/lookup", params=params).status_code == 401
    app = ready_app(server_home.workspace, ServerSettings(hma_no_auth=True))
    loopback = client_for(app, client=("127.0.0.1", 40000))
    assert loopback.get("/m/lookup", params=params).json() == {}
    assert loopback.get("/c/banks").status_code == 401  # curation always needs a token
    remote = client_for(app, client=("203.0.113.9", 40000))
    assert remote.get("/m/lookup", params=params).status_code == 401
    app.state.server.index_ready.clear()
    loading = loopback.get("/m/lookup", params=params)
    assert loading.status_code == 503 and loading.json() == {"message": "index not yet ready"}
    assert loopback.get("/status").status_code == 503


def test_hash_by_url_and_openapi(server_home, tmp_path) -> None:  # noqa: ANN001
    picture = server_home.reference.read_bytes()

    class Media(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(picture)))
            self.end_headers()
            self.wfile.write(picture)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Media)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/p.png"
        token = bearer(server_home.tokens["coop"])
        guarded = client_for(ready_app(server_home.workspace))
        refused = guarded.get("/h/hash", params={"url": url}, headers=token)
        assert refused.status_code == 400  # loopback fetches are refused by the SSRF guard
        app = ready_app(server_home.workspace, ServerSettings(allow_loopback_fetch=True))
        client = client_for(app)
        by_url = client.get("/h/hash", params={"url": url}, headers=token).json()
        by_upload = client.post(
            "/h/hash", files=upload(server_home.reference), headers=token
        ).json()
        assert by_url == by_upload
        assert client.post(
            "/h/hash", files=upload(server_home.reference, "audio"), headers=token
        ).json() == {"message": "no such content_type: 'audio'"}
    finally:
        httpd.shutdown()
        httpd.server_close()
    document = client.get("/openapi.json", headers=token).json()
    assert document["openapi"].startswith("3.")
    for path in ("/h/hash", "/m/lookup", "/m/raw_lookup", "/m/compare", "/c/banks",
                 "/c/bank/{bank}/content/{content_id}", "/c/bank/{bank}/signal"):  # fmt: skip
        assert path in document["paths"], path
    assert "post" in document["paths"]["/m/lookup"] and "get" in document["paths"]["/m/lookup"]
    json.dumps(document)
    Image.open(server_home.reference).close()
