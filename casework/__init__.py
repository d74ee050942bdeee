"""The casework domain: cases and services, the takedown queue and its rules, hosts and
notices, reports and retention. It builds on `store` and never imports `pipeline`."""
