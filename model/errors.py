"""The one exception root of xorstream.

Errors of the *system* (no broker, a corrupt artifact, a bad setting) are exceptions under
``XorstreamError``, each with a message that says how to fix it. Errors in *input data* are not
exceptions: they become dead-letter records with a reason (see ``stream.codec``).
"""

from __future__ import annotations


class XorstreamError(Exception):
    """Root of every error xorstream raises on purpose."""


class ConfigError(XorstreamError):
    """A setting or command-line value is invalid."""


class ArtifactError(XorstreamError):
    """A model artifact is missing, corrupt, or its metadata does not match its weights."""


class InputError(XorstreamError, ValueError):
    """A batch handed to a predictor or data function has the wrong shape, dtype or values."""


class BrokerError(XorstreamError):
    """The Kafka broker cannot be reached, started, or answered with an error."""


class TransactionError(BrokerError):
    """A Kafka transaction failed, was fenced, or did not finish in time."""
