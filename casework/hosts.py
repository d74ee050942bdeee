"""Hosts: where removal notices for a domain go (abuse e-mail, web form, language)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ansim.casework import listings
from ansim.casework.errors import CaseworkError
from ansim.casework.notices import LANGUAGES, HostContact
from ansim.casework.workspace import Workspace
from ansim.store import audit
from ansim.store.tables import Host, utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

# Always with fullmatch: `$` also matches before a trailing newline, which would then
# reach the notice's To: header.
EMAIL = re.compile(r"[^@\s<>,;\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def refuse_control_characters(value: str, what: str) -> None:
    if CONTROL.search(value):
        raise CaseworkError(f"{what} contains a control character (a newline?): {value!r}")


def normalize_domain(domain: str) -> str:
    """Lower case, no trailing dot, IDNA (한글.kr -> xn--...) so it compares with URL hosts."""
    refuse_control_characters(domain, "the domain")
    text = domain.strip().rstrip(".").lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise CaseworkError(f"not a valid domain: {domain!r}") from exc
    labels = text.split(".")
    if len(labels) < 2 or not all(LABEL.fullmatch(label) for label in labels):
        raise CaseworkError(f"not a valid domain: {domain!r} (example: img.example.com)")
    return text


def set_host(
    workspace: Workspace,
    domain: str,
    abuse_email: str | None = None,
    form_url: str | None = None,
    lang: str | None = None,
) -> dict[str, Any]:
    domain = normalize_domain(domain)
    if abuse_email is not None:
        refuse_control_characters(abuse_email, "the abuse address")
        if not EMAIL.fullmatch(abuse_email):
            raise CaseworkError(f"not an e-mail address: {abuse_email!r}")
    if form_url is not None:
        refuse_control_characters(form_url, "the form URL")
    if form_url is not None and urlsplit(form_url).scheme not in ("http", "https"):
        raise CaseworkError(f"the form URL must start with http:// or https://: {form_url!r}")
    if lang is not None and lang not in LANGUAGES:
        raise CaseworkError(f"language must be one of {', '.join(LANGUAGES)}, not {lang!r}")
    with workspace.session() as session:
        host = session.get(Host, domain, with_for_update=True)
        if host is None:
            host = Host(domain=domain, lang=lang or "en", updated_by=workspace.actor)
            session.add(host)
        if abuse_email is not None:
            host.abuse_email = abuse_email
        if form_url is not None:
            host.form_url = form_url
        if lang is not None:
            host.lang = lang
        host.updated_by, host.updated_at = workspace.actor, utcnow()
        audit.record(session, workspace.actor, "host.set", f"host:{domain}", host_summary(host))
        return host_summary(host)


def host_summary(host: Host) -> dict[str, Any]:
    return listings.host_summary(host.domain, host.abuse_email, host.form_url, host.lang)


def list_hosts(workspace: Workspace) -> list[dict[str, Any]]:
    with workspace.listing() as store:
        return listings.list_hosts(store)


def find_host(session: Session, hostname: str | None) -> Host | None:
    """The host entry for a URL's hostname: itself, else its closest registered parent
    (cdn.img.example.com -> img.example.com -> example.com)."""
    if not hostname:
        return None
    try:
        labels = normalize_domain(hostname).split(".")
    except CaseworkError:
        return None
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    found = {
        h.domain: h
        for h in session.execute(select(Host).where(Host.domain.in_(candidates))).scalars()
    }
    return next((found[c] for c in candidates if c in found), None)


def contact(host: Host) -> HostContact:
    return HostContact(host.domain, host.abuse_email, host.form_url, host.lang)
