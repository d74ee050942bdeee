"""The LSH text index against its brute-force twin; containment; add, withdraw, persist."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from ansim.benchmarks import text_evasions as ev
from ansim.benchmarks.text import load_texts
from ansim.detector.text import TextSignature, text_signals
from ansim.detector.text_match import TextMatchPolicy, decide_all
from ansim.indexer.persisted import PersistedIndex
from ansim.indexer.text_index import (
    BruteForceTextIndex,
    LshTextIndex,
    ScanTextIndex,
    candidate_probability,
    lsh_bands,
)

POLICY = TextMatchPolicy()


def _corpus(shared_data: Path, count: int) -> list[str]:
    texts = [t.text for t in load_texts(shared_data / "text") if len(t.text) >= 40]
    return random.Random(3).sample(texts, count)


def _signatures(texts: list[str]) -> list[TextSignature]:
    return [text_signals(t).signature for t in texts]


def test_banding_is_weighted_towards_recall() -> None:
    bands, rows = lsh_bands()
    assert bands * rows <= 128
    assert candidate_probability(0.35, bands, rows) >= 0.999
    # datasketch's own choice for threshold 0.35 would find far fewer such pairs.
    assert candidate_probability(0.35, bands, rows) > candidate_probability(0.35, 16, 8)


def test_lsh_agrees_with_brute_force_on_real_texts(shared_data: Path) -> None:
    texts = _corpus(shared_data, 400)
    references, others = texts[:200], texts[200:]
    rng = random.Random(5)
    queries = (
        [ev.typos(t, rng) for t in references[:80]]
        + [ev.truncate_half(t, rng) for t in references[80:120]]
        + [ev.embedder(others, (5, 10))(t, rng) for t in references[120:150]]
        + others[:100]
    )
    fast, slow = LshTextIndex(), BruteForceTextIndex()
    ids = list(range(1000, 1200))
    signatures = _signatures(references)
    fast.add(ids, signatures)
    slow.add(ids, signatures)
    query_signatures = _signatures(queries)
    fast_hits = fast.search(query_signatures, POLICY.search_floor)
    slow_hits = slow.search(query_signatures, POLICY.search_floor)
    matched_fast = [{d.entry_id for d in decide_all(h, POLICY)} for h in fast_hits]
    matched_slow = [{d.entry_id for d in decide_all(h, POLICY)} for h in slow_hits]
    # Every LSH hit is verified exactly, so it is also a brute-force hit...
    for f, s in zip(fast_hits, slow_hits, strict=True):
        assert {h.entry_id for h in f} <= {h.entry_id for h in s}
    # ...and LSH tuned for recall misses (almost) none of the matches.
    agree = sum(a == b for a, b in zip(matched_fast, matched_slow, strict=True))
    assert agree >= len(queries) - 1
    found = sum(1000 + i in matched_fast[i] for i in range(150))
    assert found >= 146
    # The scan is exact: the very hits of brute force, in both directions.
    scan = ScanTextIndex()
    scan.add(ids, signatures)
    assert scan.search(query_signatures, POLICY.search_floor) == slow_hits
    reverse_ids = list(range(len(queries)))
    scan, slow = ScanTextIndex(), BruteForceTextIndex()
    scan.add(reverse_ids, query_signatures)
    slow.add(reverse_ids, query_signatures)
    assert scan.search(signatures, 0.3) == slow.search(signatures, 0.3)


def test_short_post_inside_a_long_page_is_found_by_containment() -> None:
    post = "오늘 밤 10시 강남역 11번 출구 앞에서 기다릴게요 연락주세요"
    filler = [
        f"관련 없는 게시글 {i}번: 요즘 날씨가 추워서 감기 조심하세요 모두들" for i in range(200)
    ]
    page = "\n".join(filler[:120] + [post] + filler[120:])
    index = LshTextIndex()
    index.add([7], [text_signals(post).signature])
    whole = text_signals(page).signature
    hits = index.search([whole], POLICY.search_floor)[0]
    assert [h.entry_id for h in hits] == [7]
    assert hits[0].entry_containment > 0.9 and hits[0].jaccard < 0.1
    assert decide_all(hits, POLICY)[0].rule == "contains_reference"


def test_long_stored_page_holding_a_short_query_is_found_by_the_scan_index() -> None:
    """The retro-hunt's direction: the short post is the query, the pages are stored whole
    (no window MinHashes), so LSH does not propose the page and the scan does."""
    post = "오늘 밤 10시 강남역 11번 출구 앞에서 기다릴게요 연락주세요"
    syllables = random.Random(5).choices([chr(c) for c in range(0xAC00, 0xD7A4)], k=3000)
    filler = ["".join(syllables[i : i + 15]) for i in range(0, 3000, 15)]
    pages = ["\n".join(filler[:120] + [post] + filler[120:]), "\n".join(filler)]
    lsh, scan, brute = LshTextIndex(), ScanTextIndex(), BruteForceTextIndex()
    for index in (lsh, scan, brute):
        index.add([3, 4], _signatures(pages))
    query = text_signals(post).signature

    assert lsh.search([query], POLICY.search_floor)[0] == []
    hits = scan.search([query], POLICY.search_floor)[0]
    assert hits == brute.search([query], POLICY.search_floor)[0]
    assert [h.entry_id for h in hits] == [3]
    assert hits[0].query_containment > 0.9 and hits[0].jaccard < 0.1
    # The scan follows additions and removals.
    scan.add([5], [query])
    assert {h.entry_id for h in scan.search([query], POLICY.search_floor)[0]} == {3, 5}
    scan.remove([3, 5])
    assert scan.search([query], POLICY.search_floor)[0] == []


def test_truncated_repost_is_an_excerpt() -> None:
    reference = "Selling my old camera, lens and tripod. Pickup only in Mapo. Text 010 5555 1212."
    index = LshTextIndex()
    index.add([1], [text_signals(reference).signature])
    hits = index.search([text_signals(reference[:45]).signature], POLICY.search_floor)[0]
    decisions = decide_all(hits, POLICY)
    assert decisions and decisions[0].rule in ("excerpt", "near_copy")


def test_add_withdraw_and_persist(tmp_path: Path) -> None:
    texts = [
        f"게시글 번호 {i}: 이 글은 서로 다른 내용을 담고 있는 예시 문장 {i * 7919}"
        for i in range(30)
    ]
    signatures = _signatures(texts)
    persisted = PersistedIndex(tmp_path / "text.index", LshTextIndex.load, LshTextIndex)
    with persisted.write() as index:
        index.add(list(range(30)), signatures)
    with persisted.write() as index:
        assert index.remove([3, 4, 999]) == 2
    # Another process's view: the manifest and the files it names.
    reloaded = PersistedIndex(tmp_path / "text.index", LshTextIndex.load, LshTextIndex).read()
    assert len(reloaded) == 28 and 3 not in reloaded
    hits = reloaded.search([signatures[5], signatures[3]], 0.9)
    assert hits[0][0].entry_id == 5 and hits[0][0].jaccard == 1.0
    assert all(h.entry_id != 3 for h in hits[1])
    assert np.array_equal(reloaded.signature(5).shingles, signatures[5].shingles)
    # Re-adding an id replaces its entry instead of duplicating it.
    reloaded.add([5], [signatures[6]])
    assert len(reloaded) == 28
    assert reloaded.search([signatures[6]], 0.99)[0][0].entry_id in (5, 6)


def test_empty_index_saves_and_loads(tmp_path: Path) -> None:
    LshTextIndex().save(tmp_path / "empty.index")
    assert len(LshTextIndex.load(tmp_path / "empty.index")) == 0
    assert len(ScanTextIndex.load(tmp_path / "empty.index")) == 0


def test_an_lsh_index_file_loads_as_a_scan_index_and_back(tmp_path: Path) -> None:
    """Crawl histories saved before the scan index existed open as scan indexes."""
    texts = [f"게시글 {i}: 서로 다른 내용의 예시 문장 {i * 7919} 입니다" for i in range(20)]
    signatures = _signatures(texts)
    lsh = LshTextIndex()
    lsh.add(list(range(20)), signatures)
    lsh.save(tmp_path / "lsh.index")
    scan = ScanTextIndex.load(tmp_path / "lsh.index")
    assert scan.search(signatures, 0.5) == lsh.search(signatures, 0.5)
    scan.save(tmp_path / "scan.index")
    again = LshTextIndex.load(tmp_path / "scan.index")
    assert (again.bands, again.rows) == lsh_bands()
    assert again.search(signatures, 0.5) == lsh.search(signatures, 0.5)


def test_incompatible_signature_is_refused() -> None:
    signature = text_signals("a text long enough to be signed for this test").signature
    stale = TextSignature(signature.minhash, signature.shingles, signature.windows, 5, 1)
    with pytest.raises(ValueError, match="rebuild"):
        LshTextIndex().add([1], [stale])


def test_opened_bank_answers_as_built_and_proposes_datasketchs_candidates(
    shared_data: Path, tmp_path: Path
) -> None:
    """The band tables are saved and memory-mapped, not rebuilt: a reopened bank, with
    withdrawals, a replaced entry and entries added since the open, gives the very hits of
    one built in memory; its candidates are those of datasketch's LSH over the same bands
    (two-row bands are keyed exactly), and a second save folds the changes in."""
    from ansim.detector.text import NUM_PERM, to_minhash
    from datasketch import MinHashLSH

    texts = _corpus(shared_data, 300)
    rng = random.Random(8)
    signatures = _signatures(texts[:240])
    queries = _signatures(
        [ev.typos(t, rng) for t in texts[:60]]
        + [ev.embedder(texts[240:], (5, 10))(t, rng) for t in texts[60:80]]
        + texts[240:]
    )
    built = LshTextIndex()
    built.add(list(range(1, 201)), signatures[:200])
    built.save(tmp_path / "bank.index")
    opened = LshTextIndex.load(tmp_path / "bank.index")
    assert len(opened) == 200 and 7 in opened and 201 not in opened
    assert np.array_equal(opened.signature(7).shingles, signatures[6].shingles)
    for index in (built, opened):
        index.remove([3, 4, 999])
        index.add([5], [signatures[210]])  # replaced: the file's row 5 no longer counts
        index.add(list(range(201, 241)), signatures[200:240])
    assert len(opened) == len(built) == 238
    assert opened.search(queries, 0.3) == built.search(queries, 0.3)
    reference = BruteForceTextIndex()
    reference.add(list(range(1, 241)), signatures)
    reference.remove([3, 4])
    reference.add([5], [signatures[210]])
    wanted = reference.search(queries, 0.3)
    got = opened.search(queries, 0.3)
    for fast, exact in zip(got, wanted, strict=True):
        assert {h.entry_id for h in fast} <= {h.entry_id for h in exact}
    decided = [{d.entry_id for d in decide_all(h, POLICY)} for h in got]
    expected = [{d.entry_id for d in decide_all(h, POLICY)} for h in wanted]
    assert sum(a == b for a, b in zip(decided, expected, strict=True)) >= len(queries) - 1

    lsh = MinHashLSH(num_perm=NUM_PERM, params=(opened.bands, opened.rows))
    for entry_id, signature in enumerate(signatures, start=1):
        if entry_id not in (3, 4, 5):
            lsh.insert(entry_id, to_minhash(signature.minhash))
    lsh.insert(5, to_minhash(signatures[210].minhash))
    for query in queries:
        probe = to_minhash(query.minhash)
        expected = set(lsh.query(probe))
        for window in query.windows:
            probe.hashvalues = window
            expected.update(lsh.query(probe))
        assert opened._candidates(query) == sorted(expected)

    opened.save(tmp_path / "bank.index")  # over the very file it maps
    again = LshTextIndex.load(tmp_path / "bank.index")
    assert len(again) == 238 and 3 not in again
    assert again.search(queries, 0.3) == built.search(queries, 0.3)
