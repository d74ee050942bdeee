"""The relational store and the casework built on it: cases, references, scans, the
takedown queue and the audit log. The only package that talks to the database."""
