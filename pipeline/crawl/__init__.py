"""Crawls: seeds -> frontier (in the store) -> fetch -> extract -> fingerprint -> match ->
takedown queue with sealed WARC evidence, and every crawled item into the crawl history.

The loop (`loop.Crawl`) composes parts, each usable and tested alone:
- `options.CrawlOptions`: the crawl's settings, stored with the run for `--resume`.
- `frontier.Frontier`: the frontier and visited set (`crawl_url` rows), page claims.
- `batch.WriteBatch`: finished URLs' writes, one transaction per batch, a SAVEPOINT each.
- `dedup.ContentDedup`: which fetched bytes need no fingerprinting (all its layers).
- `recorder.Recorder`: items, matches, evidence, the run's summary and log file.
- `hashing.HashingWorkers`: the pool that fingerprints and matches, its per-worker banks.
- `history.HistoryFlushes`: crawled signals into the crawl-history index, in batches.

Durability: the frontier and the visited set are the `crawl_url` table. A URL is finished
in the same transaction as everything its fetch produced, so after `kill -9` at any
moment `--resume` refetches only what was in flight (its results were never recorded)
and records everything exactly once. A page is finished only after all its media, so a
page in flight at the crash is fetched again and its finished media are skipped.

One crawl per home at a time (`loop.crawl_lock`).
"""

from ansim.pipeline.crawl.loop import crawl_lock, run_crawl, scan_urls, start_run
from ansim.pipeline.crawl.options import CrawlOptions
from ansim.pipeline.crawl.recorder import CrawlSummary

__all__ = [
    "CrawlOptions",
    "CrawlSummary",
    "crawl_lock",
    "run_crawl",
    "scan_urls",
    "start_run",
]
