"""The relational store: tables, engine and sessions, migrations, the audit chain, the
data cipher and the codecs that turn signals into rows. The only package that defines
what is in the database; detectors and indexes never import it."""
