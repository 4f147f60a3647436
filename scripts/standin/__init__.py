"""Local OpenRouter stand-in: an independent implementation of the OpenRouter API
used by tests and the offline demo. Deliberately does not import tokenledger, so
tests cross-check the ledger's cost maths against a second implementation."""

from .app import create_app

__all__ = ["create_app"]
