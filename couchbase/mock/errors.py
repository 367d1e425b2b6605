"""Errors the mock's control commands raise for the caller, apart from the built-in ones."""


class BucketError(ValueError):
    """Bucket creation rejected; ``errors`` maps field names to messages (as the REST API)."""

    def __init__(self, errors: "dict[str, str]") -> None:
        super().__init__("; ".join("%s: %s" % kv for kv in errors.items()))
        self.errors = errors
