"""The product's error hierarchy; each error knows the HTTP status it maps to.

Adapters translate these once: the API in one exception handler, the CLI in ``rag.cli.main``.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: a message meant for the user, and the HTTP status it maps to."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(RagError):
    status_code = 500


class CorpusError(RagError):
    """The corpus folder is missing, empty or unusable."""

    status_code = 500


class BadDocumentError(RagError):
    """An uploaded or loaded document cannot be used (wrong type, not text, empty, too large)."""

    status_code = 422


class DocumentTooLargeError(BadDocumentError):
    status_code = 413


class DocumentNotFoundError(RagError):
    status_code = 404


class DocumentExistsError(RagError):
    status_code = 409


class IndexError_(RagError):
    """The saved index is missing, corrupt, or was built with other settings: run ``rag index``."""

    status_code = 503


class IndexMismatchError(IndexError_):
    pass


class IndexCorruptError(IndexError_):
    pass


class StoreUnavailableError(RagError):
    """The index database cannot be reached (down, restarting, or refusing connections); retry later."""

    status_code = 503


class NotReadyError(RagError):
    status_code = 503


class AuthError(RagError):
    status_code = 401


class MissingKeyError(AuthError):
    """No API key was sent (rather than a wrong one)."""


class WritesDisabledError(RagError):
    status_code = 403


class BadRequestError(RagError):
    status_code = 422


class NothingMatchesError(BadRequestError):
    """A question's filters leave no article to search: said as such, never as an abstention."""
