"""The server's console and its guards: roles on every route, sessions, CSRF, throttling,
idle time-out, security headers, the review flow with claims and the two-person rule."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from ansim.casework import confirmations
from ansim.server import auth
from ansim.server.app import ROLE_ORDER, ServerSettings
from ansim.store.tables import AuditEntry, Takedown
from PIL import Image
from sqlalchemy import select
from starlette.routing import Route

from tests.server_fixtures import (
    CONTACT,
    HOSTILE_LABEL,
    PASSWORD,
    PEOPLE,
    PSEUDONYM,
    bearer,
    client_for,
    ready_app,
    served_home,
    sign_in,
)


@pytest.fixture
def server_home(ansim_home, tmp_path):  # noqa: ANN001, ANN201
    with served_home(tmp_path) as home:
        yield home


ROLE_OF_PERSON = {"partner": "coop", **{role: name for name, role in PEOPLE.items()}}


def audit_rows(workspace, action: str) -> list[AuditEntry]:
    with workspace.store.session() as session:
        return list(
            session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars()
        )


def concrete(path: str, home) -> str:  # noqa: ANN001
    return (
        path.replace("{item_id}", str(home.item_id))
        .replace("{bank}", "NO_SUCH_BANK")
        .replace("{content_id}", "1")
        .replace("{name}", "temp")
        .replace("{case_id}", home.case_id)
        .replace("{token_id}", "999999")
        .replace("{reference_id}", "999999")
        .replace("{evidence_id}", "999999")
        .replace("{ref}", "N-1999-00001")
    )


def test_every_route_enforces_its_role(server_home) -> None:  # noqa: ANN001
    app = ready_app(server_home.workspace)
    client = client_for(app)
    guarded = [
        (route, method)
        for route in app.routes
        if isinstance(route, Route) and getattr(route.endpoint, "required_role", None)
        for method in sorted((route.methods or set()) - {"HEAD"})
    ]
    assert len(guarded) >= 30
    for route, method in guarded:
        role = route.endpoint.required_role
        api = route.endpoint.is_api
        path = concrete(route.path, server_home)
        anonymous = client.request(method, path)
        expected = 401 if api else 303
        assert anonymous.status_code == expected, (method, path, anonymous.status_code)
        if not api:
            assert anonymous.headers["location"].startswith("/login")
        below = ROLE_ORDER[: ROLE_ORDER.index(role)]
        for lower in below:
            token = server_home.tokens[ROLE_OF_PERSON[lower]]
            refused = client.request(method, path, headers=bearer(token))
            assert refused.status_code == 403, (method, path, lower, refused.status_code)
        for allowed in ROLE_ORDER[ROLE_ORDER.index(role) :]:
            if allowed == "partner" or path == "/api/logout":
                continue  # partner is only the floor; logout would revoke the test's tokens
            token = server_home.tokens[ROLE_OF_PERSON[allowed]]
            answer = client.request(method, path, headers=bearer(token))
            assert answer.status_code not in (401, 403), (method, path, allowed, answer.text[:200])
    wrong = client.get("/queue", headers={"Authorization": "Bearer ansim_forged"})
    assert wrong.status_code == 303
    assert client.get("/c/banks", headers={"Authorization": "Basic YTpi"}).status_code == 401


def test_session_cookie_csrf_and_logout(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    page = client.get("/login")
    login_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie.replace(
        "Strict", "strict"
    )
    # A forged sign-in form (no matching CSRF cookie value) is refused.
    forged = client.post("/login", data={"csrf": "nope", "name": "alice", "password": PASSWORD})
    assert forged.status_code == 403
    csrf = sign_in(client, "alice")
    set_cookie = [
        v for k, v in client.post("/login", data={}).headers.multi_items() if k == "set-cookie"
    ]
    assert set_cookie  # the retried form gets a new login CSRF cookie
    assert client.get("/queue").status_code == 200
    # Without the CSRF token a state-changing form is refused; with it, it goes through.
    item = f"/item/{server_home.item_id}"
    assert client.post(f"{item}/skip").status_code == 403
    assert client.post(f"{item}/skip", data={"csrf": "x" + csrf}).status_code == 403
    assert client.post(f"{item}/skip", data={"csrf": csrf}).status_code == 303
    assert client.post(f"{item}/reveal").status_code == 403  # header missing
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/queue").status_code == 303  # signed out


def test_session_cookie_flags_under_tls(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace, tls=True), base_url="https://testserver")
    page = client.get("/login")
    assert "Secure" in page.headers["set-cookie"]
    csrf = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
    done = client.post("/login", data={"csrf": csrf, "name": "alice", "password": PASSWORD})
    session_cookie = done.headers["set-cookie"]
    assert session_cookie.startswith(auth.SESSION_COOKIE)
    for flag in ("HttpOnly", "Secure", "Path=/"):
        assert flag in session_cookie
    assert "samesite=strict" in session_cookie.lower()
    assert done.headers["strict-transport-security"].startswith("max-age=")


def test_login_throttling_lockout_and_idle_timeout(server_home) -> None:  # noqa: ANN001
    settings = ServerSettings(login_attempts_per_source=8)
    app = ready_app(server_home.workspace, settings)
    client = client_for(app)

    def attempt(name: str, password: str) -> int:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
        return client.post(
            "/login", data={"csrf": csrf, "name": name, "password": password}
        ).status_code

    for _ in range(5):
        assert attempt("bob", "wrong password, again") == 401
    assert attempt("bob", PASSWORD) == 401  # locked out now, same answer as a wrong password
    assert audit_rows(server_home.workspace, "login.lockout")
    assert attempt("alice", "still wrong!!") == 401
    assert attempt("alice", "wrong again!!") == 401
    assert attempt("alice", PASSWORD) == 429  # this source is throttled now
    # A fresh app (new source budget): alice signs in; her session ends when idle.
    app = ready_app(server_home.workspace)
    client = client_for(app)
    sign_in(client, "alice")
    assert client.get("/queue").status_code == 200
    sessions = app.state.server.sessions
    for state in sessions._by_id.values():
        state.last_seen -= sessions.idle_timeout_s + 1
    assert client.get("/queue").status_code == 303


def test_security_headers_and_no_inline_script(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    sign_in(client, "sue")
    pages = [
        "/queue",
        f"/item/{server_home.item_id}",
        f"/item/{server_home.hostile_item_id}",
        "/audit",
        "/admin/rules",
        "/item/999999",
        "/login",
    ]
    for path in pages:
        page = client.get(path)
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), path
        assert not re.search(r"<[a-z][^>]*\son[a-z]+=", page.text), path
        assert ' style="' not in page.text, path
    media = client.get(f"/item/{server_home.item_id}/media")
    assert media.headers["cache-control"] == "no-store"
    assert client.get("/c/banks", headers={}).headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/console.css").headers.get("cache-control", "")


def test_queue_and_item_show_facts_not_victims(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    sign_in(client, "alice")
    queue = client.get("/queue?status=new")
    assert f'href="/item/{server_home.item_id}"' in queue.text
    assert server_home.case_id in queue.text
    filtered = client.get(f"/queue?case={server_home.case_id}")
    assert "1 item(s)" in filtered.text
    assert "0 item(s)" in client.get("/queue?host=nowhere.example").text
    assert client.get("/queue?since=yesterday").status_code == 400
    item = client.get(f"/item/{server_home.item_id}")
    facts, media = item.text.index("Match facts"), item.text.index('id="item-image"')
    assert facts < media
    for page in (queue.text, filtered.text, item.text):
        assert PSEUDONYM not in page and CONTACT not in page
    assert "images.example" in item.text and "pdq" in item.text


def test_hostile_url_and_label_render_as_text(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    sign_in(client, "alice")
    page = client.get(f"/item/{server_home.hostile_item_id}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "[/b]" in page
    assert "\u202e" not in page and "\u27e6U+202E\u27e7" in page
    assert HOSTILE_LABEL not in page


def test_review_claims_reveal_and_two_person_rule(server_home) -> None:  # noqa: ANN001
    workspace = server_home.workspace
    confirmations.set_rule(workspace, "digital-sex-crime", 2)
    app = ready_app(workspace)
    alice, bob = client_for(app), client_for(app)
    alice_csrf, bob_csrf = sign_in(alice, "alice"), sign_in(bob, "bob")
    item = f"/item/{server_home.item_id}"
    assert "Held for you" in alice.get(item).text
    held = bob.get(item).text
    assert "alice is reviewing this item" in held and 'id="confirm"' not in held
    assert bob.post(f"{item}/confirm", data={"csrf": bob_csrf}).status_code == 400
    # The veiled picture is grey and coarse; the whole one only comes with a reveal ticket.
    veiled = np.asarray(Image.open(io.BytesIO(alice.get(f"{item}/media").content)).convert("RGB"))
    assert (veiled[..., 0] == veiled[..., 1]).all() and (veiled[..., 1] == veiled[..., 2]).all()
    answer = alice.post(f"{item}/reveal", headers={"X-CSRF-Token": alice_csrf}).json()
    full = alice.get(answer["src"])
    assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    colours = np.asarray(Image.open(io.BytesIO(full.content)).convert("RGB")).astype(int)
    assert np.abs(colours[..., 0] - colours[..., 2]).max() > 20
    assert alice.get(answer["src"]).status_code == 400  # single use
    second = alice.post(f"{item}/reveal", headers={"X-CSRF-Token": alice_csrf}).json()
    assert bob.get(second["src"]).status_code == 400  # and only for whom it was issued
    reveals = audit_rows(workspace, "review.reveal")
    assert [(r.actor, r.subject) for r in reveals] == [
        ("alice", f"takedown:{server_home.item_id}")
    ] * 2
    # Two-person rule: alice confirms, bob may now claim and confirm; the item is confirmed.
    done = alice.post(f"{item}/confirm", data={"csrf": alice_csrf, "note": "same photo"})
    assert done.status_code == 303
    assert "alice (1 of 2 needed)" in bob.get(item).text
    assert alice.post(f"{item}/confirm", data={"csrf": alice_csrf}).status_code == 400
    assert bob.post(f"{item}/confirm", data={"csrf": bob_csrf}).status_code == 303
    with workspace.store.session() as session:
        assert session.get(Takedown, server_home.item_id).status == "confirmed"
    actors = {r.actor for r in audit_rows(workspace, "queue.confirmation")}
    assert actors == {"alice", "bob"}


def test_reject_needs_reason_and_skip_moves_on(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    csrf = sign_in(client, "alice")
    first = client.get("/review/next")
    assert first.status_code == 303
    item = first.headers["location"]
    client.get(item)
    assert client.post(f"{item}/reject", data={"csrf": csrf, "reason": " "}).status_code == 400
    skipped = client.post(f"{item}/skip", data={"csrf": csrf})
    assert skipped.headers["location"] == "/review/next"
    assert audit_rows(server_home.workspace, "review.skip")
    other = client.get("/review/next").headers["location"]
    client.get(other)
    rejected = client.post(f"{other}/reject", data={"csrf": csrf, "reason": "different person"})
    assert rejected.status_code == 303
    with server_home.workspace.store.session() as session:
        statuses = {t.status for t in session.execute(select(Takedown)).scalars()}
    assert "rejected" in statuses


def test_admin_pages_change_users_and_rules(server_home) -> None:  # noqa: ANN001
    app = ready_app(server_home.workspace)
    admin, temp = client_for(app), client_for(app)
    csrf = sign_in(admin, "ada")
    sign_in(temp, "temp")
    added = admin.post(
        "/admin/users",
        data={"csrf": csrf, "name": "carol", "role": "analyst", "password": PASSWORD},
    )
    assert added.status_code == 303 and "carol" in admin.get("/admin/users").text
    assert admin.post("/admin/users/temp/disable", data={"csrf": csrf}).status_code == 303
    assert temp.get("/queue").status_code == 303  # the disabled account's session ended
    changed = admin.post(
        "/admin/rules", data={"csrf": csrf, "case_type": "stalking", "confirmations": "3"}
    )
    assert changed.status_code == 303
    assert confirmations.list_rules(server_home.workspace)["stalking"] == 3
    assert audit_rows(server_home.workspace, "queue.policy")[-1].actor == "ada"


@pytest.mark.parametrize("person", ["alice"])
def test_analyst_cannot_change_rules(server_home, person: str) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    csrf = sign_in(client, person)
    refused = client.post(
        "/admin/rules", data={"csrf": csrf, "case_type": "stalking", "confirmations": "1"}
    )
    assert refused.status_code == 403


def test_reviewer_settings_over_defaults(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    csrf = sign_in(client, "alice")
    item = f"/item/{server_home.item_id}"
    page = client.get(item).text
    assert 'class="veiled blur-medium"' in page and 'data-reveal="hold"' in page
    bad = client.post("/settings", data={"csrf": csrf, "blur": "none", "reveal": "hold"})
    assert bad.status_code == 400
    saved = client.post("/settings", data={"csrf": csrf, "blur": "strong", "reveal": "toggle"})
    assert saved.status_code == 303
    page = client.get(item).text
    assert 'class="veiled blur-strong in-colour"' in page and 'data-reveal="toggle"' in page
    veiled = np.asarray(Image.open(io.BytesIO(client.get(f"{item}/media").content)).convert("RGB"))
    assert np.abs(veiled[..., 0].astype(int) - veiled[..., 2]).max() > 5  # colour kept, blurred
    other = client_for(ready_app(server_home.workspace))
    sign_in(other, "bob")
    assert 'class="veiled blur-medium"' in other.get(item).text  # bob keeps the defaults


def test_supervisor_case_page_reveals_contact_on_demand(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    csrf = sign_in(client, "sue")
    page = client.get(f"/case/{server_home.case_id}")
    assert (
        page.status_code == 200 and CONTACT not in page.text and 'id="reveal-contact"' in page.text
    )
    assert f'href="/item/{server_home.item_id}"' in page.text
    assert client.post(f"/case/{server_home.case_id}/contact").status_code == 403  # no CSRF
    revealed = client.post(f"/case/{server_home.case_id}/contact", data={"csrf": csrf})
    assert CONTACT in revealed.text
    assert [r.actor for r in audit_rows(server_home.workspace, "case.reveal_contact")] == ["sue"]
    assert (
        client_for(ready_app(server_home.workspace)).get(f"/case/{server_home.case_id}").status_code
        == 303
    )


def test_login_redirects_only_to_local_paths_and_bodies_are_bounded(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    for target, expected in [
        ("/item/1", "/item/1"),
        ("//evil.example/x", "/queue"),
        ("/\t/evil.example", "/queue"),
        ("/\\evil.example", "/queue"),
        ("https://evil.example/", "/queue"),
    ]:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
        done = client.post(
            "/login", data={"csrf": csrf, "name": "alice", "password": PASSWORD, "next": target}
        )
        assert done.headers["location"] == expected, target
    token = bearer(server_home.tokens["sue"])
    huge = client.post(
        "/c/bank/X/signal", headers={**token, "Content-Length": str(200 << 20)}, content=b"{}"
    )
    assert huge.status_code == 413

    def chunks():  # a body of unstated length would spill past the spool onto disk
        yield b"{}"

    chunked = client.post("/c/bank/X/signal", headers=token, content=chunks())
    assert chunked.status_code == 413


def test_admin_creates_and_revokes_partner_tokens(server_home) -> None:  # noqa: ANN001
    client = client_for(ready_app(server_home.workspace))
    csrf = sign_in(client, "ada")
    page = client.post("/admin/tokens", data={"csrf": csrf, "user": "coop", "name": "coop-prod"})
    token = re.search(r'<code id="new-token">([^<]+)</code>', page.text).group(1)
    assert client.get("/m/index/status", headers=bearer(token)).status_code == 200
    token_id = max(int(t) for t in re.findall(r'action="/admin/tokens/(\d+)/revoke"', page.text))
    assert client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf": csrf}).status_code == 303
    assert client.get("/m/index/status", headers=bearer(token)).status_code == 401
    assert token not in client.get("/admin/users").text  # shown once only


def test_video_match_shows_a_veiled_keyframe_strip(server_home, tmp_path) -> None:  # noqa: ANN001
    from ansim.casework import cases
    from ansim.detector.hashing import HashOptions
    from ansim.pipeline import intake

    from tests.casework_fixtures import found_at
    from tests.server_fixtures import seal_evidence
    from tests.video_media import photos, slideshow

    workspace = server_home.workspace
    video = slideshow(tmp_path / "ref.mp4", photos(tmp_path / "stills", 3, first_seed=40), 12.0)
    case_id = cases.open_case(workspace, "digital-sex-crime")
    [added] = intake.add_reference_files(workspace, case_id, [video], HashOptions())
    assert added.error is None and added.modality == "video"
    [item_id] = found_at(workspace, video, "https://videos.example/v.mp4")
    seal_evidence(workspace, item_id, video, "https://videos.example/v.mp4")
    client = client_for(ready_app(workspace))
    csrf = sign_in(client, "alice")
    assert 'id="item-image"' in client.get(f"/item/{item_id}").text
    veiled = np.asarray(Image.open(io.BytesIO(client.get(f"/item/{item_id}/media").content)))
    assert veiled.shape[1] > 4 * veiled.shape[0]  # a strip of frames side by side
    answer = client.post(f"/item/{item_id}/reveal", headers={"X-CSRF-Token": csrf}).json()
    strip = np.asarray(Image.open(io.BytesIO(client.get(answer["src"]).content)).convert("RGB"))
    assert strip.shape == (120, veiled.shape[1], 3)
    assert np.abs(strip[..., 0].astype(int) - strip[..., 2]).max() > 20  # colour when revealed


def test_audio_match_shows_a_spectrogram(server_home, tmp_path) -> None:  # noqa: ANN001
    from ansim.casework import cases
    from ansim.detector.hashing import HashOptions
    from ansim.pipeline import intake

    from tests.audio_helpers import generic_beat, write_wav
    from tests.casework_fixtures import found_at
    from tests.server_fixtures import seal_evidence

    workspace = server_home.workspace
    samples, rate = generic_beat(12.0)
    track = write_wav(tmp_path / "ref.wav", samples, rate)
    case_id = cases.open_case(workspace, "digital-sex-crime")
    [added] = intake.add_reference_files(workspace, case_id, [track], HashOptions())
    assert added.error is None and added.modality == "audio"
    [item_id] = found_at(workspace, track, "https://audio.example/a.wav")
    seal_evidence(workspace, item_id, track, "https://audio.example/a.wav")
    client = client_for(ready_app(workspace))
    csrf = sign_in(client, "alice")
    assert 'id="item-image"' in client.get(f"/item/{item_id}").text
    answer = client.post(f"/item/{item_id}/reveal", headers={"X-CSRF-Token": csrf}).json()
    shown = np.asarray(Image.open(io.BytesIO(client.get(answer["src"]).content)).convert("L"))
    assert shown.shape == (200, 900) and shown.std() > 5  # a spectrogram, not a blank


def test_local_feature_match_draws_where_the_reference_sits(
    server_home, tmp_path, shared_data
) -> None:  # noqa: ANN001, E501
    """A cropped copy pasted into another photo is matched by verification; the queue item
    keeps the reference's corners in the item and the item page outlines them over the
    veiled image (an SVG polygon, no script)."""
    from ansim.casework import cases, queue
    from ansim.detector.hashing import HashOptions
    from ansim.pipeline import intake

    from tests.casework_fixtures import found_at
    from tests.detector.test_robust_images import crop_and_paste, shared_photo
    from tests.server_fixtures import seal_evidence

    workspace = server_home.workspace
    photo, background = (
        shared_photo(shared_data, "100007.jpg"),
        shared_photo(shared_data, "2018.jpg"),
    )
    reference = tmp_path / "reference.png"
    photo.save(reference)
    pasted = tmp_path / "pasted.png"
    crop_and_paste(photo, background).save(pasted)
    case_id = cases.open_case(workspace, "digital-sex-crime")
    [added] = intake.add_reference_files(workspace, case_id, [reference], HashOptions())
    [item_id] = found_at(workspace, pasted, "https://images.example/pasted.png")
    seal_evidence(workspace, item_id, pasted, "https://images.example/pasted.png")
    match = queue.show_item(workspace, item_id)["match"]
    assert "verification" in match["signal"]
    corners = match["region"]
    # The pasted middle of the photo starts a third across and a fifth down the item.
    top_left_visible = (1 / 3, 1 / 5)
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    assert min(xs) < top_left_visible[0] < max(xs) and min(ys) < top_left_visible[1] < max(ys)
    assert 0.45 < (corners[1][0] - corners[0][0]) < 0.75  # about half the item's width, uncropped

    client = client_for(ready_app(workspace))
    sign_in(client, "alice")
    page = client.get(f"/item/{item_id}").text
    drawn = re.search(
        r'<svg class="region" id="region" viewBox="0 0 100 100"[^>]*>'
        r'<polygon points="([^"]+)"/></svg>',
        page,
    )
    assert drawn, page
    points = [tuple(float(v) / 100 for v in pair.split(",")) for pair in drawn.group(1).split()]
    assert np.allclose(points, corners, atol=0.001)
    # An item matched by PDQ alone has no outline.
    assert 'id="region"' not in client.get(f"/item/{server_home.item_id}").text


def test_supervisor_report_page_and_its_plot(server_home) -> None:  # noqa: ANN001
    """`ansim report`'s figures and plot in the console: the PNG is drawn in memory,
    never cached, holds no case ids or victims' names, and each view is audited."""
    app = ready_app(server_home.workspace)
    client = client_for(app)
    sign_in(client, "sue")
    page = client.get("/report?since=2020-01-01")
    assert page.status_code == 200
    assert (
        "2 items in 2 cases" in page.text and 'src="/report/plot.png?since=2020-01-01"' in page.text
    )
    assert server_home.case_id not in page.text and PSEUDONYM not in page.text
    plot = client.get("/report/plot.png?since=2020-01-01")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.headers["cache-control"] == "no-store" and plot.content[:4] == b"\x89PNG"
    assert Image.open(io.BytesIO(plot.content)).size[0] > 1000
    assert server_home.case_id.encode() not in plot.content
    assert not list(server_home.workspace.home.root.rglob("*.png"))  # nothing written
    assert len(audit_rows(server_home.workspace, "report.read")) == 2
    assert "not a date" in client.get("/report?since=2026-13-01").text
    alice = client_for(app)
    sign_in(alice, "alice")
    assert alice.get("/report/plot.png").status_code == 403


def test_admin_key_page_rotates_with_csrf(server_home) -> None:  # noqa: ANN001
    from ansim.casework import cases

    app = ready_app(server_home.workspace)
    admin = client_for(app)
    csrf = sign_in(admin, "ada")
    before = admin.get("/admin/key").text
    assert 'id="key-check">matches the store' in before and "never" in before
    old_check = re.search(r"<code>([^<]+)</code>", before).group(1)
    assert admin.post("/admin/key/rotate", data={}).status_code == 403  # no CSRF token
    rotated = admin.post("/admin/key/rotate", data={"csrf": csrf})
    assert rotated.status_code == 303 and rotated.headers["location"].startswith("/admin/key?")
    after = admin.get(rotated.headers["location"]).text
    assert "Key rotated:" in after and 'id="key-check">matches the store' in after
    assert old_check not in after and "by ada" in after
    assert '<dd id="key-count">1' in after
    shown = cases.show_case(server_home.workspace, server_home.case_id, reveal=True)
    assert shown["contact"] == CONTACT  # still readable under the new key


def test_admin_index_page_shows_each_bank(server_home) -> None:  # noqa: ANN001
    app = ready_app(server_home.workspace)
    admin = client_for(app)
    sign_in(admin, "ada")
    page = admin.get("/admin/indexes").text
    reference = re.search(
        r'<table class="indexes" id="indexes-reference">(.*?)</table>', page, re.S
    )
    assert reference and "<td>pdq</td><td>2</td><td>2</td>" in reference.group(1)
    assert "Lookups are served" in page
    # A signal added behind the index's back reads as stale until its next use.
    from ansim.store.tables import Signal

    with server_home.workspace.store.session() as session:
        row = session.execute(select(Signal).where(Signal.kind == "pdq")).scalars().first()
        session.add(Signal(reference_id=row.reference_id, kind="pdq", value=row.value))
    stale = admin.get("/admin/indexes").text
    assert "no: rebuilt on next use" in stale
