"""The crawler: frontier, fetcher, robots.txt, politeness, extraction, evidence (WARC).

Never imports casework: the store-backed frontier and the match wiring live there and
drive this package through its small interfaces.
"""
