"""Generate Apache combined-format access-log lines for the sample B2B site.

Usernames come from the source database's customers (``-`` for anonymous requests). Each
customer gets one to three "home" IP addresses drawn from the offline IP database's
ranges for their own ``customers.country`` (by rejection sampling with ``iptocc``), used for
most of their requests; the rest come from other countries, private ranges or IPv6. User
agents cover every device category plus bots and command-line clients. ``malformed_pct``
percent of lines are broken on purpose (truncated, garbage, invalid UTF-8, empty).
Deterministic for a seed.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import iptocc

USER_AGENTS = {  # (user agent, weight); real strings of each category
    "windows": [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 10),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", 5),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 3),
    ],
    "mac": [
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", 5),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 3),
    ],
    "iphone": [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 8),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", 2),
    ],
    "ipad": [
        ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", 3),
    ],
    "android": [
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 6),
        ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 5),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 2),
    ],
    "linux": [
        ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 2),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 1),
    ],
    "bot": [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
        ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 1),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 7_0 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) Version/7.0 Mobile/11A465 Safari/9537.53 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 1),
    ],
    "cli": [
        ("curl/8.5.0", 1),
        ("python-requests/2.31.0", 1),
        ("Wget/1.21.3", 1),
    ],
}
AGENTS = [(ua, w) for group in USER_AGENTS.values() for ua, w in group]
PATHS = ("/", "/login", "/logout", "/cart", "/checkout", "/account/orders", "/static/app.js", "/static/site.css",
         "/api/v1/orders", "/api/v1/prices", "/help/shipping")
METHODS = (("GET", 80), ("POST", 12), ("HEAD", 3), ("PUT", 3), ("DELETE", 2))
STATUSES = ((200, 75), (304, 8), (302, 5), (301, 2), (404, 6), (403, 1), (500, 2), (503, 1))
REFERERS = ("-", "https://www.example-b2b.com/", "https://www.google.com/", "https://www.example-b2b.com/cart",
            "https://www.bing.com/search?q=industrial+valves")


def _weighted(pairs):
    return [p for p, _ in pairs], [w for _, w in pairs]


class IpPool:
    """Random public addresses grouped by their iptocc country (IPv4 and some IPv6)."""

    def __init__(self, rng: random.Random, countries: set[str], per_country: int = 12):
        self.by_country: dict[str, list[str]] = {}
        wanted = set(countries)
        for _ in range(60):  # rounds of 200,000 random addresses
            batch = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(200_000)]
            for address, code in zip(batch, iptocc.country_code(batch)):
                if code and len(self.by_country.setdefault(code, [])) < per_country:
                    self.by_country[code].append(address)
            if all(len(self.by_country.get(c, [])) >= per_country for c in wanted):
                break
        v6 = [str(ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124))) for _ in range(20_000)]
        self.ipv6 = [(a, c) for a, c in zip(v6, iptocc.country_code(v6)) if c][:200]
        self.all = [a for addresses in self.by_country.values() for a in addresses]

    def home(self, rng: random.Random, country: str) -> str:
        """An address in ``country`` (any public address when the country has none)."""
        addresses = self.by_country.get(country) or self.all
        return rng.choice(addresses)


def generate(users: list[tuple[str, str]], lines: int, seed: int, start: datetime, end: datetime,
             malformed_pct: float = 0.0, utc_offset: str = "+0000") -> Iterator[bytes]:
    """Yield ``lines`` log lines (bytes with newline) in time order between ``start`` and ``end`` (UTC).

    ``users`` are (username, country) pairs from the source customers. Timestamps are
    written in ``utc_offset`` (e.g. ``-0700``) local time.
    """
    rng = random.Random(seed)
    pool = IpPool(rng, {country for _, country in users if country})  # a NULL country: any address
    homes = {u: [pool.home(rng, c) for _ in range(rng.randint(1, 3))] for u, c in users}
    agents, agent_w = zip(*AGENTS)
    user_agent = {u: rng.choices(agents, agent_w)[0] for u, _ in users}
    methods, method_w = _weighted(METHODS)
    statuses, status_w = _weighted(STATUSES)
    sign = -1 if utc_offset.startswith("-") else 1
    shift = sign * timedelta(hours=int(utc_offset[1:3]), minutes=int(utc_offset[3:5]))
    span = max(1, int((end - start).total_seconds()))
    stamps = sorted(rng.randrange(span) for _ in range(lines))
    for second in stamps:
        if malformed_pct and rng.random() * 100 < malformed_pct:
            yield _malformed(rng)
            continue
        moment = start + timedelta(seconds=second) + shift
        stamp = moment.strftime("%d/%b/%Y:%H:%M:%S ") + utc_offset
        if users and rng.random() < 0.6:
            username, country = rng.choice(users)
            ip = rng.choice(homes[username]) if rng.random() < 0.85 else rng.choice(pool.all)
            agent = user_agent[username] if rng.random() < 0.9 else rng.choices(agents, agent_w)[0]
        else:
            username = "-"
            r = rng.random()
            ip = (rng.choice(pool.ipv6)[0] if r < 0.1 and pool.ipv6 else
                  f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" if r < 0.15 else rng.choice(pool.all))
            agent = rng.choices(agents, agent_w)[0]
        method = rng.choices(methods, method_w)[0]
        path = rng.choice(PATHS)
        if path == "/" and rng.random() < 0.3:
            path = f"/products/P{rng.randrange(1, 20000):06d}"
        if rng.random() < 0.01:
            path = '/search?q=\\"quoted\\"+term'  # an escaped quote inside the request, as Apache logs it
        status = rng.choices(statuses, status_w)[0]
        size = "-" if status == 304 or method == "HEAD" else str(rng.randrange(200, 250_000))
        protocol = "HTTP/2.0" if rng.random() < 0.3 else "HTTP/1.1"
        referer = rng.choice(REFERERS)
        line = f'{ip} - {username} [{stamp}] "{method} {path} {protocol}" {status} {size} "{referer}" "{agent}"\n'
        yield line.encode("utf-8")


def _malformed(rng: random.Random) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:
        return b"\n"
    if kind == 1:
        return b'203.0.113.9 - - [10/Oct/2024:13:55:36 +0000] "GET /truncated\n'
    if kind == 2:
        return b"\xff\xfe garbage \xc3\x28 not a log line\n"
    if kind == 3:
        return b"this is not an access log line at all\n"
    return b'198.51.100.7 - - 10/Oct/2024:13:55:36 +0000 "GET / HTTP/1.1" 200 12 "-" "x"\n'


def default_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    """1 January last year 00:00 UTC until now (naive UTC)."""
    now = now or datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    return datetime(now.year - 1, 1, 1), now
