"""The error that dataset readers raise for unusable data; the message names the file."""


class DataError(ValueError):
    """A dataset file or folder is missing, malformed or out of range."""
