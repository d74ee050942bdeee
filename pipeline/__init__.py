"""The matching pipeline: signal banks kept in step with the store, the matchers, and the
services that run them (scan, reference intake, crawl, retro-hunt, re-checks). It reads
and writes through `store`, and hands findings to `casework` for the takedown queue."""
