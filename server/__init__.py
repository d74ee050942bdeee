"""The center's server: accounts and roles, the review console and an HMA-compatible API."""
