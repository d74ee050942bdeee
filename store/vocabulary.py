"""The vocabulary of the store's closed sets (case types, service kinds), in a module of
its own so that a command's help can name them without loading the tables."""

CASE_TYPES = ("digital-sex-crime", "stalking", "child-exploitation", "domestic-violence", "other")
SERVICE_KINDS = (
    "counseling",
    "deletion",
    "legal",
    "psychological",
    "medical",
    "housing",
    "financial",
)
