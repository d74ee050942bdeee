"""SSRF guard: address policy, legacy IP spellings, the filtering resolver, and the
fetcher refusing private destinations directly, through DNS and on every redirect."""

from __future__ import annotations

import asyncio

import pytest
from ansim.crawler.fetch import BLOCKED, OK
from ansim.crawler.guard import AddressPolicy, BlockedAddress, GuardedResolver, parse_ip_literal

from tests.crawler_helpers import PinnedResolver, quick_fetcher

REFUSED_ALWAYS = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "224.0.0.1", "0.0.0.0",
    "100.64.0.1", "fe80::1", "fc00::1", "ff02::1", "::", "::ffff:10.0.0.1", "::ffff:169.254.1.1",
    "192.0.2.1", "240.0.0.1",
]  # fmt: skip
LOOPBACK = ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"]
GLOBAL = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED_ALWAYS)
def test_private_and_special_ranges_are_refused_even_with_loopback_allowed(address: str) -> None:
    for policy in (AddressPolicy(), AddressPolicy(allow_loopback=True)):
        with pytest.raises(BlockedAddress):
            policy.check_ip(address)


@pytest.mark.parametrize("address", LOOPBACK)
def test_loopback_only_when_allowed(address: str) -> None:
    with pytest.raises(BlockedAddress, match="loopback"):
        AddressPolicy().check_ip(address)
    AddressPolicy(allow_loopback=True).check_ip(address)


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_pass(address: str) -> None:
    AddressPolicy().check_ip(address)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.1", "127.0.0.1"),
     ("0177.0.0.1", "127.0.0.1"), ("167772161", "10.0.0.1"), ("[::1]", "::1"),
     ("example.com", None), ("1.example", None)],
)  # fmt: skip
def test_legacy_ip_spellings_are_read_as_addresses(spelling: str, address: str | None) -> None:
    parsed = parse_ip_literal(spelling)
    assert (str(parsed) if parsed else None) == address


def test_localhost_names_are_loopback_whatever_dns_says() -> None:
    with pytest.raises(BlockedAddress):
        AddressPolicy().check_host("localhost")
    with pytest.raises(BlockedAddress):
        AddressPolicy().check_host("anything.localhost")
    AddressPolicy(allow_loopback=True).check_host("localhost")


def test_resolver_drops_refused_addresses_and_refuses_when_none_left() -> None:
    pinned = PinnedResolver({"mixed.test": ["10.0.0.7", "127.0.0.1"], "inside.test": ["10.0.0.7"]})

    async def go() -> None:
        allowed = await GuardedResolver(AddressPolicy(allow_loopback=True), pinned).resolve(
            "mixed.test", 80
        )
        assert [r["host"] for r in allowed] == ["127.0.0.1"]
        with pytest.raises(BlockedAddress, match="10.0.0.7"):
            await GuardedResolver(AddressPolicy(allow_loopback=True), pinned).resolve("inside.test")
        with pytest.raises(BlockedAddress):
            await GuardedResolver(AddressPolicy(), pinned).resolve("mixed.test")

    asyncio.run(go())


def test_fetcher_connects_only_to_the_allowed_address_of_a_name(hostile_site) -> None:
    port = hostile_site.server.port
    pinned = PinnedResolver(
        {"mixed.test": ["10.0.0.7", "127.0.0.1"], "inside.test": ["169.254.169.254"]}
    )

    async def go() -> None:
        async with quick_fetcher(dns=pinned) as fetcher:
            ok = await fetcher.fetch(f"http://mixed.test:{port}/img/0.png")
            assert ok.outcome == OK and ok.resolved_ip == "127.0.0.1"
            blocked = await fetcher.fetch(f"http://inside.test:{port}/")
            assert blocked.outcome == BLOCKED and "169.254.169.254" in blocked.error
        async with quick_fetcher(dns=pinned, allow_loopback=False) as fetcher:
            blocked = await fetcher.fetch(f"http://mixed.test:{port}/img/0.png")
            assert blocked.outcome == BLOCKED
            literal = await fetcher.fetch(hostile_site.url("/img/0.png"))
            assert literal.outcome == BLOCKED and "loopback" in literal.error

    asyncio.run(go())


@pytest.mark.parametrize(
    ("path", "target"),
    [("/redirect-private", "10.1.2.3"), ("/redirect-metadata", "169.254.169.254"),
     ("/redirect-mapped", "10.0.0.1"), ("/redirect-decimal", "10.0.0.1")],
)  # fmt: skip
def test_every_redirect_hop_is_checked(hostile_site, path: str, target: str) -> None:
    async def go():
        async with quick_fetcher() as fetcher:
            return await fetcher.fetch(hostile_site.url(path))

    result = asyncio.run(go())
    assert result.outcome == BLOCKED
    assert target in result.error
    # The refused hop was never requested: only the redirecting page was.
    assert len(result.exchanges) == 1 and result.exchanges[0].status == 302
