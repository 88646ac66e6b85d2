"""The one refusal of an upload: a message for the person who sent it and the HTTP status that fits."""
from __future__ import annotations


class ImageRejected(ValueError):
    """An upload that cannot be used; ``status`` is the HTTP code that fits."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
