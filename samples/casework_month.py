"""Seed $ANSIM_HOME with a simulated month of takedown work, run through the real services.

    ANSIM_HOME=.demo/month .venv/bin/python samples/casework_month.py
    ANSIM_HOME=.demo/month .venv/bin/ansim report --since 2026-10-01 --until 2026-11-01 \\
        --plot .demo/month/report.png

What is real: fingerprints of the bundled sample images (the "reported" media) and of
re-encoded copies, the match pipeline, confirmations (two analysts for child exploitation),
notice drafting and SMTP delivery (to a local aiosmtpd server), nightly re-checks over HTTP
(a local server), reappearance linking and every status transition, all on one simulated
clock. What is simulated: the hosts. Their names resolve to that local server (nothing
leaves the machine), and each host removes an item a random delay after its first notice
(fast, medium, slow, unresponsive, flaky), drawn from a seeded generator; some removed
items are re-uploaded elsewhere on the same host days later. Detections are spread over
the month. The numbers in the report are therefore properties of this simulation, not of
real hosts: the point is to show the workflow and the report on a month of activity.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import random
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from aiosmtpd.controller import Controller
from ansim.casework import cases, confirmations, hosts, notice_service, queue
from ansim.casework.lifecycle import as_utc
from ansim.casework.notices import Sender
from ansim.casework.recheck import RecheckPolicy
from ansim.casework.smtp import SmtpSettings
from ansim.casework.workspace import Workspace
from ansim.detector.hashing import HashOptions
from ansim.pipeline import intake, scanning
from ansim.pipeline.recheck_service import RecheckFetch, recheck
from ansim.pipeline.workspaces import init_workspace
from ansim.signal_types.hashing import hash_file
from ansim.store.tables import Service, Takedown, TakedownEvent
from PIL import Image

MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 1, tzinfo=UTC)
IMAGES = Path(__file__).parent / "images"
SENDER = Sender("Demo Support Center", "takedown@center.example")

# host -> (share of detections, removal delay after first notice in hours (low, high) or
# None for never, chance a re-check finds it unreachable, chance it is re-uploaded later)
HOSTS = {
    "fastboard.example": (0.30, (2, 20), 0.0, 0.35, "ko"),
    "imgshare.example": (0.25, (12, 90), 0.0, 0.2, "en"),
    "slowtube.example": (0.15, (100, 400), 0.0, 0.1, "en"),
    "offshore.example": (0.10, None, 0.0, 0.0, "en"),
    "flaky.example": (0.10, (20, 120), 0.35, 0.2, "ko"),
    "nocontact.example": (0.10, None, 0.0, 0.0, None),
}
CASE_TYPES = [
    "digital-sex-crime",
    "digital-sex-crime",
    "child-exploitation",
    "stalking",
    "digital-sex-crime",
    "other",
]


@dataclass
class World:
    """What the simulated hosts serve, on the simulated clock."""

    now: datetime = MONTH_START
    bodies: dict[str, bytes] = field(default_factory=dict)  # path -> bytes
    removed_at: dict[str, datetime] = field(default_factory=dict)  # path -> removal time
    flaky: dict[str, float] = field(default_factory=dict)  # path -> chance of 503
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str) -> tuple[int, bytes]:
        with self.lock:
            if self.rng.random() < self.flaky.get(path, 0.0):
                return 503, b"try later"
            removal = self.removed_at.get(path)
            if path not in self.bodies or (removal is not None and self.now >= removal):
                return 404, b"not found"
            return 200, self.bodies[path]


def serve(world: World) -> int:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            key = f"{self.headers['Host'].split(':')[0]}{self.path}"
            status, body = world.answer(key)
            self.send_response(status)
            self.send_header("Content-Type", "image/jpeg" if status == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


class SimulatedHosts(AbstractResolver):
    """The simulated hosts' names resolve to the local server; everything else as usual.
    The re-check's SSRF guard still checks what this returns (loopback is allowed here)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not host.endswith(".example"):
            # Made here: it binds the running loop, and each re-check night runs its own.
            return await ThreadedResolver().resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detections", type=int, default=120, help="items found over the month")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    world = World(rng=random.Random(args.seed + 1))
    port = serve(world)
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    smtp = SmtpSettings("127.0.0.1", smtp_port)
    workspace, _ = init_workspace()
    kim = dataclasses.replace(workspace, actor="kim")
    lee = dataclasses.replace(workspace, actor="lee")
    crawler = dataclasses.replace(workspace, actor="crawler")
    try:
        copies = register_cases(kim, rng)
        for domain, (_, _, _, _, lang) in HOSTS.items():
            if lang:
                hosts.set_host(kim, domain, f"abuse@{domain}", lang=lang)
        confirmations.set_rule(kim, "child-exploitation", 2)
        detections = plan_detections(rng, args.detections, len(copies))
        simulate(world, rng, port, copies, detections, kim, lee, crawler, smtp)
    finally:
        controller.stop()
        workspace.close()
    print(f"seeded {workspace.home.root}: {sink.count} notices delivered to the local SMTP server")


def register_cases(analyst: Workspace, rng: random.Random) -> list[tuple[Path, object]]:
    """One case per sample image; returns (re-encoded copy, its signals) per case."""
    folder = analyst.home.root / "copies"
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for image, case_type in zip(sorted(IMAGES.glob("*.jpg")), CASE_TYPES, strict=False):
        case_id = cases.open_case(analyst, case_type, pseudonym=f"P-{image.stem[:4]}")
        [added] = intake.add_reference_files(analyst, case_id, [image], HashOptions())
        assert added.error is None, added.error
        for day in sorted(rng.sample(range(31), 3)):
            with analyst.session() as session:
                session.add(
                    Service(
                        case_id=case_id,
                        kind=rng.choice(["counseling", "deletion", "legal", "psychological"]),
                        given_on=MONTH_START + timedelta(days=day, hours=10),
                        recorded_by=analyst.actor,
                    )
                )
        copy = folder / f"{image.stem}-repost.jpg"
        Image.open(image).convert("RGB").resize((360, 270)).save(copy, quality=60)
        copies.append((copy, hash_file(copy)))
    return copies


def plan_detections(rng: random.Random, count: int, cases_count: int) -> list[tuple]:
    names = list(HOSTS)
    weights = [HOSTS[n][0] for n in names]
    month_hours = (MONTH_END - MONTH_START) / timedelta(hours=1)
    planned = [
        (
            MONTH_START + timedelta(hours=rng.uniform(0, month_hours - 30)),
            rng.choices(names, weights)[0],
            rng.randrange(cases_count),
        )
        for _ in range(count)
    ]
    return sorted(planned)


def simulate(world, rng, port, copies, detections, kim, lee, crawler, smtp) -> None:  # noqa: ANN001
    reviews: list[tuple[datetime, int, bool]] = []  # (when, item, is a real copy)
    reuploads: list[tuple[datetime, str, int]] = []
    delays: dict[int, float | None] = {}
    case_of_item: dict[int, int] = {}
    serial = 0
    tick = MONTH_START
    policy = RecheckPolicy()
    # Loopback hosts answer in milliseconds: no pause between requests to one host.
    fetching = RecheckFetch(timeout_s=5, allow_loopback=True, min_delay_s=0, dns=SimulatedHosts())
    while tick < MONTH_END:
        world.now = tick
        due = [d for d in detections if d[0] <= tick] + [r for r in reuploads if r[0] <= tick]
        detections = [d for d in detections if d[0] > tick]
        reuploads = [r for r in reuploads if r[0] > tick]
        for when, domain, case_index in sorted(due):
            serial += 1
            path = f"/p/{serial}.jpg"
            url = f"http://{domain}:{port}{path}"
            copy, signals = copies[case_index]
            world.bodies[domain + path] = copy.read_bytes()
            for match in scanning.record_signals(crawler, signals, url):
                backdate_detection(crawler, match.takedown_id, when)
                case_of_item[match.takedown_id] = case_index
                window = HOSTS[domain][1]
                delays[match.takedown_id] = rng.uniform(*window) if window else None
                world.flaky[domain + path] = HOSTS[domain][2]
                real = rng.random() > 0.08  # analysts reject some matches
                reviews.append(
                    (when + timedelta(hours=rng.uniform(0.3, 8)), match.takedown_id, real)
                )
        for when, item, real in [r for r in reviews if r[0] <= tick]:
            reviews.remove((when, item, real))
            review(kim, lee, item, real, when)
        if tick.hour in (11, 17):
            notice_service.draft(kim, SENDER, kim.home.root / "notices", now=tick)
            sent = notice_service.send(kim, smtp, now=tick)
            for notice in sent.sent:
                for item in notice["takedowns"]:
                    schedule_removal(world, kim, item, delays.get(item), tick)
        if tick.hour == 2:
            result = recheck(kim, fetching, policy, smtp, SENDER, now=tick)
            for checked in result.checked:
                if checked["after"] == "removed":
                    domain = urlsplit(checked["url"]).hostname
                    if rng.random() < HOSTS[domain][3]:
                        later = tick + timedelta(days=rng.uniform(2, 8))
                        reuploads.append((later, domain, case_of_item[checked["id"]]))
        tick += timedelta(hours=1)


def backdate_detection(crawler: Workspace, takedown_id: int, when: datetime) -> None:
    """The simulated crawler found it at `when` (scans stamp the wall clock)."""
    with crawler.session() as session:
        takedown = session.get(Takedown, takedown_id)
        if takedown.status != "new" or len(takedown.events) != 1:
            return
        takedown.detected_at = takedown.updated_at = when
        first: TakedownEvent = takedown.events[0]
        first.at = when
        if takedown.reappearance_of is not None:  # the earlier item's `reappeared` event
            earlier = session.get(Takedown, takedown.reappearance_of)
            earlier.events[-1].at = max(when, as_utc(earlier.events[-2].at))


def review(kim: Workspace, lee: Workspace, item: int, real: bool, when: datetime) -> None:
    if not real:
        queue_reject(kim, item, when)
        return
    shown = confirmations.confirm(kim, item, at=when)
    if shown["status"] == "new":  # a second analyst is required for this case type
        confirmations.confirm(lee, item, at=when + timedelta(minutes=40))


def queue_reject(analyst: Workspace, item: int, when: datetime) -> None:
    with analyst.session() as session:
        takedown = queue.get_item(session, item, for_update=True)
        queue.transition(
            session, takedown, "rejected", analyst.actor, "not the reported media", when
        )


def schedule_removal(world: World, workspace: Workspace, item: int, delay, sent_at) -> None:  # noqa: ANN001
    with workspace.store.session() as session:
        url = urlsplit(session.get(Takedown, item).location)
    key = f"{url.hostname}{url.path}"
    if delay is not None and key not in world.removed_at:
        world.removed_at[key] = sent_at + timedelta(hours=delay)


if __name__ == "__main__":
    main()
