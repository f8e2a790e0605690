"""IP address -> ISO 3166 alpha-2 country.

Default: the offline database of the ``iptocc`` package (IPv4 and IPv6, no network).
When an ipinfo token is configured, addresses are looked up with the ``ipinfo`` library's
batch API (``Handler.getBatchDetails``: POST ``<api_url>/batch``, at most 1,000 addresses
per request), through a persistent cache (``etl_control.ip_country_cache``); any error or
timeout falls back to the offline database and is counted. Private, reserved and
malformed addresses (or host names) give an empty country, never an error. Each distinct
address is looked up at most once per :class:`CountryLookup` (one per run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone

import iptocc

from etl import control

log = logging.getLogger(__name__)


def offline_countries(addresses: list[str]) -> list[str]:
    """Countries of ``addresses`` from the offline iptocc database ("" where unknown)."""
    return [(code or "").upper() for code in iptocc.country_code(addresses)]


class CountryLookup:
    """IP -> country lookups with a cache of distinct addresses for this run.

    ``token`` (optional) enables ipinfo; ``api_url`` is its base URL; ``timeout_seconds``
    bounds each batch request; ``cache_conn`` (a psycopg2 connection, optional) holds the
    persistent ipinfo cache. Counters: ``lookups`` (distinct addresses resolved),
    ``ipinfo_lookups``, ``cache_hits``, ``fallbacks`` (addresses resolved offline after an
    ipinfo error).
    """

    def __init__(self, token: str = "", api_url: str = "https://ipinfo.io", timeout_seconds: float = 5.0, cache_conn=None):
        self.cache: dict[str, str] = {}
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.cache_conn = cache_conn
        self.lookups = self.ipinfo_lookups = self.cache_hits = self.fallbacks = 0
        if token and cache_conn is not None:
            control.ensure_schema(cache_conn)  # etl_control.ip_country_cache (etl.control.CONTROL_TABLES)

    def countries(self, addresses: Iterable[str]) -> dict[str, str]:
        """Resolve every distinct address not yet known; returns the whole {address: country} cache."""
        missing = [a for a in set(addresses) if a not in self.cache]
        if not missing:
            return self.cache
        self.lookups += len(missing)
        if not self.token:
            self.cache.update(zip(missing, offline_countries(missing)))
            return self.cache
        missing = self._from_persistent_cache(missing)
        if missing:
            self.cache.update(self._from_ipinfo(missing))
        return self.cache

    def _from_persistent_cache(self, addresses: list[str]) -> list[str]:
        if self.cache_conn is None:
            return addresses
        with self.cache_conn.cursor() as cur:
            cur.execute("SELECT ip_address, country FROM etl_control.ip_country_cache WHERE ip_address IN %s", [tuple(addresses)])
            found = dict(cur.fetchall())
        self.cache_hits += len(found)
        self.cache.update(found)
        return [a for a in addresses if a not in found]

    def _from_ipinfo(self, addresses: list[str]) -> dict[str, str]:
        import ipinfo
        import ipinfo.handler

        handler = ipinfo.getHandler(self.token)
        saved = ipinfo.handler.API_URL
        ipinfo.handler.API_URL = self.api_url  # the library reads its endpoint from this module global
        try:
            details = handler.getBatchDetails(addresses, timeout_per_batch=self.timeout_seconds, raise_on_fail=True)
        except Exception as exc:  # noqa: BLE001 - any failure of the web API means: fall back
            self.fallbacks += len(addresses)
            log.warning("ipinfo lookup of %d addresses failed (%s); used the offline database for them",
                        len(addresses), type(exc).__name__)
            return dict(zip(addresses, offline_countries(addresses)))
        finally:
            ipinfo.handler.API_URL = saved
        self.ipinfo_lookups += len(addresses)
        result = {}
        for address in addresses:
            info = details.get(address)
            info = info.all if hasattr(info, "all") else (info or {})
            result[address] = str(info.get("country") or "").upper()[:2]
        if self.cache_conn is not None:
            from psycopg2.extras import execute_values

            now = datetime.now(timezone.utc).replace(tzinfo=None)
            with self.cache_conn.cursor() as cur:
                cur.execute("DELETE FROM etl_control.ip_country_cache WHERE ip_address IN %s", [tuple(result)])
                execute_values(
                    cur, "INSERT INTO etl_control.ip_country_cache (ip_address, country, source, looked_up_datetime) VALUES %s",
                    [(address, country, "ipinfo", now) for address, country in result.items()], page_size=1000,
                )
            self.cache_conn.commit()
        return result
