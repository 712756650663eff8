"""Vendor clients, each behind a Protocol, and the error classes every channel shares.

Services reach vendors only through these packages; the error classes in
:mod:`cerniq.providers.errors` tell a send job whether to retry, resolve an ambiguity or give up.
"""

from cerniq.providers.errors import (
    AccountUnavailableError,
    AmbiguousProviderError,
    AuthProviderError,
    BannedProviderError,
    InvalidRecipientError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

__all__ = [
    "AccountUnavailableError",
    "AmbiguousProviderError",
    "AuthProviderError",
    "BannedProviderError",
    "InvalidRecipientError",
    "PermanentProviderError",
    "ProviderError",
    "TransientProviderError",
]
