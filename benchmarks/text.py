"""`ansim bench text`: recall per evasion, precision against tens of thousands of
distractors, and throughput, for the lexical tier (and the semantic tier when asked).

Data: the short real texts under `shared/data/text/` (see its MANIFEST.md). References
are sampled from the *test* sources; reposts are generated from them with every evasion
in `benchmarks.text_evasions`; distractors are all other texts (every source), queried
against the reference index, where any match is a false positive. A distractor whose
normalized text equals a reference's is the same text, not a distractor, and is dropped.

Held out from calibration: the default run samples references from nsmc,
youtube_spam_collection and question_pair; `--calibrate` samples them from chatbot_data
and sms_spam_collection only and sweeps the decision thresholds there.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ansim.benchmarks import text_evasions as ev
from ansim.detector.errors import MediaError
from ansim.detector.text import TextOptions, TextSignals, text_signals
from ansim.detector.text_match import TextHit, TextMatchPolicy, decide_all
from ansim.detector.text_normalize import normalize
from ansim.indexer.text_index import LshTextIndex
from rich.console import Console
from rich.progress import Progress

TEST_SOURCES = ("nsmc", "youtube_spam_collection", "question_pair")
CALIBRATION_SOURCES = ("chatbot_data", "sms_spam_collection")
# "Reported posts" are sampled among texts at least this long once normalized; shorter
# texts still serve as distractors.
DEFAULT_MIN_REFERENCE_CHARS = 30


@dataclass(frozen=True)
class Text:
    source: str
    language: str
    text: str


def _read_csv(path: Path, column: str, encoding: str = "utf-8") -> Iterator[str]:
    with open(path, encoding=encoding, newline="") as handle:
        for row in csv.DictReader(handle):
            value = row.get(column)
            if value:
                yield value


def load_texts(data_dir: Path) -> list[Text]:
    """Every distinct text under DIR, tagged with its source and language."""
    texts: list[Text] = []
    nsmc = data_dir / "nsmc" / "nsmc_raw_sample50k.tsv"
    if nsmc.exists():
        with open(nsmc, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(reader, None)
            texts += [Text("nsmc", "ko", row[4]) for row in reader if len(row) >= 5]
    chatbot = data_dir / "chatbot_data" / "ChatbotData.csv"
    if chatbot.exists():
        for column in ("Q", "A"):
            texts += [Text("chatbot_data", "ko", t) for t in _read_csv(chatbot, column)]
    for name in ("kor_pair_train.csv", "kor_Pair_test.csv"):
        path = data_dir / "question_pair" / name
        if path.exists():
            for column in ("question1", "question2"):
                texts += [
                    Text("question_pair", "ko", t) for t in _read_csv(path, column, "utf-8-sig")
                ]
    sms = data_dir / "sms_spam_collection" / "SMSSpamCollection"
    if sms.exists():
        for line in sms.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                texts.append(Text("sms_spam_collection", "en", line.split("\t", 1)[1]))
    for path in sorted((data_dir / "youtube_spam_collection").glob("*.csv")):
        texts += [Text("youtube_spam_collection", "en", t) for t in _read_csv(path, "CONTENT")]
    seen: set[str] = set()
    distinct = []
    for item in texts:
        if item.text.strip() and item.text not in seen:
            seen.add(item.text)
            distinct.append(item)
    if not distinct:
        raise FileNotFoundError(f"no texts found under {data_dir} (expected shared/data/text)")
    return distinct


@dataclass
class EvasionResult:
    name: str
    kind: str  # character | edit | structural
    applicable: int = 0
    found: int = 0
    refused: int = 0
    wrong_matches: int = 0  # matched a reference other than its own

    @property
    def recall(self) -> float:
        return self.found / self.applicable if self.applicable else float("nan")


@dataclass
class BenchResult:
    references: int
    distractors: int
    distractors_refused: int
    twin_references: int
    distractor_false_matches: int
    # False matches whose raw texts are near-duplicates by an independent measure
    # (`ordered_overlap`): the corpus was deduplicated only exactly, so spam campaigns
    # that differ in a number or a code are "other texts" that really are reposts.
    corpus_duplicate_matches: int
    true_matches: int
    false_matches: int
    signatures_per_s: float
    queries_per_s: float
    policy: dict[str, Any]
    evasions: list[EvasionResult] = field(default_factory=list)
    false_match_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        total = self.true_matches + self.false_matches
        return self.true_matches / total if total else float("nan")

    @property
    def precision_excluding_corpus_duplicates(self) -> float:
        false = self.false_matches - self.corpus_duplicate_matches
        total = self.true_matches + false
        return self.true_matches / total if total else float("nan")


CORPUS_DUPLICATE_OVERLAP = 0.8


def ordered_overlap(a: str, b: str) -> float:
    """Share of the shorter text's characters that appear, in order, in the longer one, in
    runs of at least 4 (difflib's matching blocks on case-folded raw text): a check
    independent of shingles and of the normalizer. Shorter runs are left out because a
    long page lines up with any short text one common character at a time."""
    a, b = a.casefold(), b.casefold()
    if not a or not b:
        return 0.0
    blocks = SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    return sum(block.size for block in blocks if block.size >= 4) / min(len(a), len(b))


def _signals(text: str, options: TextOptions) -> TextSignals | None:
    try:
        return text_signals(text, options)
    except MediaError:
        return None


def _split(
    texts: list[Text], sources: tuple[str, ...], count: int, min_chars: int, rng: random.Random
) -> tuple[list[Text], list[Text]]:
    """(references, distractors): references sampled from `sources` among long-enough
    texts, a fifth of them English when there are enough; distractors are the rest."""
    eligible = [t for t in texts if t.source in sources and len(normalize(t.text)) >= min_chars]
    english = [t for t in eligible if t.language == "en"]
    korean = [t for t in eligible if t.language != "en"]
    n_english = min(len(english), count // 5)
    chosen = rng.sample(english, n_english) + rng.sample(
        korean, min(len(korean), count - n_english)
    )
    chosen_ids = {id(t) for t in chosen}
    reference_keys = {normalize(t.text) for t in chosen}
    distractors = [
        t for t in texts if id(t) not in chosen_ids and normalize(t.text) not in reference_keys
    ]
    return chosen, distractors


def _hits_for(
    index: LshTextIndex, signals: TextSignals | None, floor: float
) -> list[TextHit] | None:
    if signals is None:
        return None
    return index.search([signals.signature], min_similarity=floor)[0]


def run_text_bench(
    data_dir: Path,
    references: int = 1000,
    max_distractors: int | None = None,
    seed: int = 7,
    calibrate: bool = False,
    min_reference_chars: int = DEFAULT_MIN_REFERENCE_CHARS,
    policy: TextMatchPolicy = TextMatchPolicy(),
    options: TextOptions = TextOptions(),
) -> tuple[BenchResult, dict[str, Any] | None]:
    rng = random.Random(seed)
    texts = load_texts(data_dir)
    sources = CALIBRATION_SOURCES if calibrate else TEST_SOURCES
    refs, distractors = _split(texts, sources, references, min_reference_chars, rng)
    if max_distractors is not None and len(distractors) > max_distractors:
        distractors = rng.sample(distractors, max_distractors)
    # Page fillers come from the distractors, so an embedded page holds no other reference.
    fillers = [t.text for t in rng.sample(distractors, min(len(distractors), 5000))]
    evasions: list[tuple[str, str, ev.Evasion]] = (
        [(n, "character", f) for n, f in ev.CHARACTER_LEVEL.items()]
        + [(n, "edit", f) for n, f in ev.EDIT_LEVEL.items()]
        + [(n, "structural", f) for n, f in ev.STRUCTURAL.items()]
        + [("embed_in_page", "structural", ev.embedder(fillers))]
    )
    floor = min(policy.search_floor, 0.3) if calibrate else policy.search_floor

    index = LshTextIndex()
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("signing references", total=len(refs))
        ref_signals = []
        for ref in refs:
            ref_signals.append(text_signals(ref.text, options))
            progress.advance(task)
        index.add(list(range(len(refs))), [s.signature for s in ref_signals])
        # References that match each other unmodified (spam templates, stock phrases): a
        # repost of one rightly matches the other too.
        self_hits = index.search([s.signature for s in ref_signals], min_similarity=floor)

        # Reposts: (evasion, reference id, hits or None when refused).
        repost_hits: list[tuple[str, int, str, list[TextHit] | None]] = []
        task = progress.add_task("reposts", total=len(evasions) * len(refs))
        for name, _, evade in evasions:
            for ref_id, ref in enumerate(refs):
                evaded = evade(ref.text, rng)
                if evaded != ref.text:
                    hits = _hits_for(index, _signals(evaded, options), floor)
                    repost_hits.append((name, ref_id, evaded, hits))
                progress.advance(task)

        task = progress.add_task("signing distractors", total=len(distractors))
        started = time.perf_counter()
        distractor_signals = []
        for item in distractors:
            distractor_signals.append(_signals(item.text, options))
            progress.advance(task)
        signing_s = time.perf_counter() - started

        task = progress.add_task("querying distractors", total=len(distractors))
        started = time.perf_counter()
        distractor_hits = []
        for signals in distractor_signals:
            distractor_hits.append(_hits_for(index, signals, floor))
            progress.advance(task)
        query_s = time.perf_counter() - started

    signed = sum(1 for s in distractor_signals if s is not None)
    recorded = Recorded(evasions, refs, distractors, self_hits, repost_hits, distractor_hits)
    result = _score(
        policy, recorded, len(distractors) / signing_s, signed / query_s if query_s else 0.0
    )
    sweep = _sweep(recorded) if calibrate else None
    return result, sweep


@dataclass
class Recorded:
    """Every query's verified hits, so policies can be scored without querying again."""

    evasions: list[tuple[str, str, ev.Evasion]]
    refs: list[Text]
    distractors: list[Text]
    self_hits: list[list[TextHit]]
    repost_hits: list[tuple[str, int, str, list[TextHit] | None]]  # evasion, ref, query
    distractor_hits: list[list[TextHit] | None]


def _score(
    policy: TextMatchPolicy, recorded: Recorded, signatures_per_s: float, queries_per_s: float
) -> BenchResult:
    refs, distractors = recorded.refs, recorded.distractors
    per_evasion = {name: EvasionResult(name, kind) for name, kind, _ in recorded.evasions}
    twins = [{d.entry_id for d in decide_all(hits, policy)} for hits in recorded.self_hits]
    true_matches = false_matches = 0
    corpus_duplicates = 0
    examples = []
    for name, ref_id, query, hits in recorded.repost_hits:
        row = per_evasion[name]
        row.applicable += 1
        if hits is None:
            row.refused += 1
            continue
        matched = {d.entry_id for d in decide_all(hits, policy)}
        if ref_id in matched:
            row.found += 1
            true_matches += 1
        wrong = sorted(matched - {ref_id} - twins[ref_id])
        row.wrong_matches += len(wrong)
        false_matches += len(wrong)
        for other in wrong:
            # A filler of an embedding page, or half of a reference, can be a near-copy
            # of another reference already in the corpus.
            overlap = ordered_overlap(query, refs[other].text)
            corpus_duplicates += overlap >= CORPUS_DUPLICATE_OVERLAP
            if len(examples) < 30:
                examples.append({"evasion": name, "ordered_overlap": round(overlap, 3)})
    distractor_false = 0
    for item, hits in zip(distractors, recorded.distractor_hits, strict=True):
        for decision in decide_all(hits or [], policy):
            distractor_false += 1
            overlap = ordered_overlap(item.text, refs[decision.entry_id].text)
            corpus_duplicates += overlap >= CORPUS_DUPLICATE_OVERLAP
            if len(examples) < 60:
                examples.append(
                    {
                        "distractor_source": item.source,
                        "reference_source": refs[decision.entry_id].source,
                        "rule": decision.rule,
                        "ordered_overlap": round(overlap, 3),
                        "explanation": decision.explanation,
                    }
                )
    return BenchResult(
        references=len(refs),
        distractors=len(distractors),
        distractors_refused=sum(1 for h in recorded.distractor_hits if h is None),
        twin_references=sum(1 for t in twins if len(t) > 1),
        distractor_false_matches=distractor_false,
        corpus_duplicate_matches=int(corpus_duplicates),
        true_matches=true_matches,
        false_matches=false_matches + distractor_false,
        signatures_per_s=signatures_per_s,
        queries_per_s=queries_per_s,
        policy=asdict(policy),
        evasions=list(per_evasion.values()),
        false_match_examples=examples,
    )


def _sweep(recorded: Recorded) -> dict[str, Any]:
    """Score a grid of policies on the recorded hits. Among those whose precision is >=
    0.999 once copies already in the corpus count as right (raw precision cannot tell a
    spam template's variants apart from false matches), rank by worst recall over the
    evasions, then by fewest raw false matches."""
    rows = []
    grid = itertools.product(
        (0.5, 0.6, 0.7), (0.7, 0.8, 0.9), (0.8, 0.9), (8, 10, 15), (10, 20, 30), (0.3, 0.4, 0.5)
    )
    for jaccard, entry_c, query_c, shared, contained_shared, excerpt_share in grid:
        policy = TextMatchPolicy(jaccard, entry_c, query_c, shared, contained_shared, excerpt_share)
        scored = _score(policy, recorded, 0.0, 0.0)
        recalls = {e.name: e.recall for e in scored.evasions if e.applicable}
        rows.append(
            {
                "policy": asdict(policy),
                "precision": scored.precision,
                "precision_excluding_corpus_duplicates": (
                    scored.precision_excluding_corpus_duplicates
                ),
                "false_matches": scored.false_matches,
                "min_recall": min(recalls.values()),
                "recalls": recalls,
            }
        )
    ok = [r for r in rows if r["precision_excluding_corpus_duplicates"] >= 0.999]
    ok.sort(key=lambda r: (-r["min_recall"], r["false_matches"]))
    return {"best": ok[:10], "all": rows}


def report_markdown(result: BenchResult, command: str) -> str:
    lines = [
        "# ansim bench text",
        "",
        f"Command: `{command}`",
        "",
        f"References: {result.references:,}; distractors: {result.distractors:,} "
        f"({result.distractors_refused:,} refused as too short); references that match "
        f"another reference unmodified: {result.twin_references}; policy: {result.policy}",
        "",
        "| evasion | kind | reposts | recall | refused | wrong matches |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result.evasions:
        lines.append(
            f"| {row.name} | {row.kind} | {row.applicable:,} | {row.recall:.4f} | "
            f"{row.refused} | {row.wrong_matches} |"
        )
    lines += [
        "",
        f"Precision: **{result.precision:.5f}** ({result.true_matches:,} true matches, "
        f"{result.false_matches:,} false, {result.distractor_false_matches:,} of them on "
        "distractors).",
        "",
        f"Of the false matches, {result.corpus_duplicate_matches:,} pair texts that are copies "
        f"already in the corpus (>= {CORPUS_DUPLICATE_OVERLAP:.0%} of the shorter text appears "
        "verbatim in the other, in runs of 4+ characters, by difflib). Counting those as right: "
        f"precision {result.precision_excluding_corpus_duplicates:.5f}.",
        "",
        f"Signatures: {result.signatures_per_s:,.0f} documents/s; "
        f"queries: {result.queries_per_s:,.0f} /s (single process)",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(
    out_dir: Path, result: BenchResult, sweep: dict[str, Any] | None, command: str
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = asdict(result)
    payload["precision"] = result.precision
    payload["precision_excluding_corpus_duplicates"] = result.precision_excluding_corpus_duplicates
    for row, evasion in zip(payload["evasions"], result.evasions, strict=True):
        row["recall"] = evasion.recall
    payload["command"] = command
    (out_dir / "text_bench.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    if sweep is not None:
        (out_dir / "text_calibration.json").write_text(json.dumps(sweep, indent=2))
    report = out_dir / "text_bench.md"
    report.write_text(report_markdown(result, command))
    return report


def failure_summary(result: BenchResult) -> Counter[str]:
    """Which evasions miss their targets (for the CLI's exit code and summary)."""
    misses: Counter[str] = Counter()
    targets = defaultdict(
        lambda: 0.99, {"reorder": 0.9, "truncate_half": 0.9, "embed_in_page": 0.9}
    )
    for row in result.evasions:
        if row.applicable and row.recall < targets[row.name]:
            misses[row.name] = row.applicable - row.found
    return misses


def main(argv: list[str] | None = None) -> int:
    """`python -m ansim.benchmarks.text --data DIR --out OUT` (what `ansim bench text` runs)."""
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m ansim.benchmarks.text", description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--references", type=int, default=1000)
    parser.add_argument("--max-distractors", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args(argv)
    command = "python -m ansim.benchmarks.text " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    result, sweep = run_text_bench(
        args.data, args.references, args.max_distractors, args.seed, args.calibrate
    )
    report = write_outputs(args.out, result, sweep, command)
    print(report.read_text())
    if sweep:
        for row in sweep["best"][:5]:
            print(
                row["policy"],
                f"precision {row['precision']:.5f}",
                f"min recall {row['min_recall']:.4f}",
            )
    return 1 if failure_summary(result) or result.precision < 0.999 else 0


if __name__ == "__main__":
    raise SystemExit(main())
