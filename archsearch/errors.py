"""Errors a user can cause. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations


class ArchsearchError(Exception):
    """Base class for problems in user input (specs, names, files, settings)."""


class SpecError(ArchsearchError, ValueError):
    """A spec (or a file holding one) is malformed or describes an impossible network.

    Subclasses ``ValueError`` so that pydantic reports it, with its message, when it
    is raised inside a validator.
    """


class UnknownNameError(ArchsearchError, LookupError):
    """A name (reference, block type, backend, space) that archsearch does not know."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known)}")

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return self.args[0]


class WeightTransferError(ArchsearchError):
    """Weights of a source model do not fit the destination model."""
