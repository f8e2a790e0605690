"""IP address -> ISO 3166 alpha-2 country.

Default: the offline database of the ``iptocc`` package (IPv4 and IPv6, no network).
Private, reserved and malformed addresses (or host names) give an empty country, never an
error. Each distinct address is looked up once per :class:`CountryLookup`.
"""

from __future__ import annotations

from collections.abc import Iterable

import iptocc


class CountryLookup:
    """Offline IP -> country lookups with a per-instance cache of distinct addresses."""

    def __init__(self) -> None:
        self.cache: dict[str, str] = {}
        self.lookups = 0

    def countries(self, addresses: Iterable[str]) -> dict[str, str]:
        """Look up every distinct address not yet cached (one batch); returns the whole cache.

        Countries are upper-case ISO-2 codes; "" where unknown (private, reserved, invalid).
        """
        missing = [a for a in set(addresses) if a not in self.cache]
        if missing:
            self.lookups += len(missing)
            for address, code in zip(missing, iptocc.country_code(missing)):
                self.cache[address] = (code or "").upper()
        return self.cache
