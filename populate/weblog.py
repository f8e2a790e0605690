"""Generate Apache combined-format access-log lines for the sample B2B site.

Three kinds of traffic, each the way real logs show it (shares of the well-formed lines):

* people (about 73%): browsers on desktops, phones and tablets (Windows, Mac, iPhone,
  Android phones and tablets, iPad, a few Linux and Chrome OS desktops). About three
  quarters of their requests are logged in with the username of one of the source's
  customers; each customer has a desktop, usually a phone and sometimes a tablet, and makes
  most requests from one to three "home" IP addresses drawn from the offline IP database's
  ranges for their own ``customers.country`` (by rejection sampling with ``iptocc``); the
  rest come from other countries. Anonymous visitors (``-``) browse from anywhere, private
  ranges and IPv6 included;
* crawlers (about 25%): search engines, SEO tools and AI crawlers (Googlebot, bingbot,
  AhrefsBot, YandexBot, Ezooms, ...), each from a few addresses of its own country. They
  never log in (username ``-``), only GET and HEAD pages, and fetch ``/robots.txt``;
* scripts (about 2%): command-line clients and libraries (curl, Wget, python-requests),
  anonymous.

``malformed_pct`` percent of lines are broken on purpose (truncated, garbage, invalid UTF-8,
empty). Deterministic for a seed.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import iptocc

DESKTOPS = [  # (user agent, weight): real strings; what a customer's office computer runs
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 30),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80", 14),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", 5),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", 12),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 10),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:125.0) Gecko/20100101 Firefox/125.0", 2),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 1),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 1),
]
PHONES = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 18),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", 4),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 6),
    ("Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 8),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", 5),
    ("Mozilla/5.0 (Linux; Android 13; 2201117TG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", 3),
]
TABLETS = [
    ("Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", 10),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", 3),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", 3),
    ("Mozilla/5.0 (Linux; Android 12; Lenovo TB-X606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", 1),
]
BROWSERS = {"desktop": DESKTOPS, "phone": PHONES, "tablet": TABLETS}
OWNED = {"desktop": (1.0, 60), "phone": (0.8, 30), "tablet": (0.4, 20)}
"""Per kind of device: the chance that a customer has one, and its weight among their requests."""
ANONYMOUS_MIX = (("desktop", 50), ("phone", 44), ("tablet", 6))
"""The devices of anonymous visitors (people browsing without logging in)."""
CRAWLERS = [  # (user agent, weight, the country its addresses are in)
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 8, "US"),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 10, "US"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 5, "US"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 7_0 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) Version/7.0 Mobile/11A465 Safari/9537.53 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2, "US"),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 6, "SG"),
    ("Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)", 4, "US"),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 3, "RU"),
    ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", 2, "CN"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", 2, "US"),
    ("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", 2, "GB"),
    ("Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)", 1, "US"),
    ("Mozilla/5.0 (compatible; Ezooms/1.0; help@moz.com)", 1, "US"),
    ("Mozilla/5.0 (compatible; Ezooms/1.0; ezooms.bot@gmail.com)", 1, "US"),
    ("Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)", 2, "IE"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", 2, "US"),
    ("Mozilla/5.0 (compatible; SeznamBot/4.0; +https://o-seznam.cz/napoveda/vyhledavani/en/seznambot-crawler/)", 1, "CZ"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", 1, "US"),
]
CLIENTS = [  # command-line clients and libraries: scripts, monitoring
    ("curl/8.5.0", 2),
    ("python-requests/2.31.0", 2),
    ("Wget/1.21.3", 1),
    ("Go-http-client/2.0", 1),
]
TRAFFIC = (("person", 73), ("crawler", 25), ("client", 2))
"""The share of each kind of traffic among the well-formed lines."""
LOGGED_IN = 0.75
"""The share of people's requests that are logged in (when the source has customers)."""
PATHS = ("/", "/login", "/logout", "/cart", "/checkout", "/account/orders", "/static/app.js", "/static/site.css",
         "/api/v1/orders", "/api/v1/prices", "/help/shipping")
METHODS = (("GET", 80), ("POST", 12), ("HEAD", 3), ("PUT", 3), ("DELETE", 2))
STATUSES = ((200, 75), (304, 8), (302, 5), (301, 2), (404, 6), (403, 1), (500, 2), (503, 1))
REFERERS = ("-", "https://www.example-b2b.com/", "https://www.google.com/", "https://www.example-b2b.com/cart",
            "https://www.bing.com/search?q=industrial+valves")
CRAWLED_PATHS = ("/", "/help/shipping", "/static/site.css", "/static/app.js", "/sitemap.xml")
CRAWLER_METHODS = (("GET", 95), ("HEAD", 5))
CRAWLER_STATUSES = ((200, 85), (304, 4), (301, 3), (404, 8))
CLIENT_PATHS = ("/", "/api/v1/prices", "/api/v1/orders", "/help/shipping")
CLIENT_METHODS = (("GET", 70), ("POST", 20), ("HEAD", 10))
CLIENT_STATUSES = ((200, 70), (401, 15), (403, 5), (404, 5), (500, 5))


def _weighted(pairs):
    return [p for p, _ in pairs], [w for _, w in pairs]


class IpPool:
    """Random public addresses grouped by their iptocc country (IPv4 and some IPv6)."""

    def __init__(self, rng: random.Random, countries: set[str], per_country: int = 12):
        self.by_country: dict[str, list[str]] = {}
        wanted = set(countries)
        for _ in range(60):  # rounds of 200,000 random addresses
            numbers = [rng.getrandbits(32) for _ in range(200_000)]  # as str(IPv4Address(n)), faster
            batch = [f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in numbers]
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


class _Visitors:
    """Who requests what on the sample site: customers, anonymous people, crawlers and scripts.

    ``users`` are (username, country) pairs. Every draw comes from ``rng``, in a fixed order.
    """

    def __init__(self, rng: random.Random, users: list[tuple[str, str]]):
        self.rng, self.users = rng, users
        countries = {country for _, country in users if country} | {country for _, _, country in CRAWLERS}
        self.pool = IpPool(rng, countries)  # a NULL customer country: any address
        self.browsers = {kind: _weighted(agents) for kind, agents in BROWSERS.items()}
        self.homes = {u: [self.pool.home(rng, c) for _ in range(rng.randint(1, 3))] for u, c in users}
        self.devices = {u: self._owned() for u, _ in users}
        self.crawler_ips = [[self.pool.home(rng, country) for _ in range(3)] for _, _, country in CRAWLERS]
        self.anonymous = _weighted(ANONYMOUS_MIX)
        self.crawlers = ([(a, i) for i, (a, _, _) in enumerate(CRAWLERS)], [w for _, w, _ in CRAWLERS])
        self.clients = _weighted(CLIENTS)
        self.tables = {name: _weighted(pairs) for name, pairs in (
            ("methods", METHODS), ("statuses", STATUSES), ("crawler_methods", CRAWLER_METHODS),
            ("crawler_statuses", CRAWLER_STATUSES), ("client_methods", CLIENT_METHODS), ("client_statuses", CLIENT_STATUSES))}

    def _browser(self, kind: str) -> str:
        return self.rng.choices(*self.browsers[kind])[0]

    def _owned(self) -> tuple[list[str], list[int]]:
        """A customer's devices (user agents) and the weight of each among their requests."""
        owned = [(self._browser(kind), weight) for kind, (chance, weight) in OWNED.items() if self.rng.random() < chance]
        return _weighted(owned or [(self._browser("desktop"), 1)])

    def person(self) -> tuple[str, str, str]:
        """(username, ip, agent) of a request by a person: a customer logged in, or ``-``."""
        rng = self.rng
        if self.users and rng.random() < LOGGED_IN:
            username, _ = rng.choice(self.users)
            ip = rng.choice(self.homes[username]) if rng.random() < 0.85 else rng.choice(self.pool.all)
            if rng.random() < 0.05:  # another computer or a borrowed phone
                agent = self._browser(rng.choices(*self.anonymous)[0])
            else:
                agent = rng.choices(*self.devices[username])[0]
            return username, ip, agent
        r = rng.random()
        ip = (rng.choice(self.pool.ipv6)[0] if r < 0.1 and self.pool.ipv6 else
              f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" if r < 0.15 else rng.choice(self.pool.all))
        return "-", ip, self._browser(rng.choices(*self.anonymous)[0])

    def crawler(self) -> tuple[str, str, str]:
        """(``-``, ip, agent) of a crawler's request: crawlers never log in."""
        agent, index = self.rng.choices(*self.crawlers)[0]
        return "-", self.rng.choice(self.crawler_ips[index]), agent

    def client(self) -> tuple[str, str, str]:
        """(``-``, ip, agent) of a script's request (curl, python-requests, ...)."""
        return "-", self.rng.choice(self.pool.all), self.rng.choices(*self.clients)[0]


    def request(self, kind: str) -> tuple[str, str, int, str]:
        """(method, path, status, referer) of a request by a ``kind`` of visitor (person, crawler, client)."""
        rng, pick = self.rng, lambda table: rng.choices(*self.tables[table])[0]
        if kind == "crawler":
            r = rng.random()
            path = ("/robots.txt" if r < 0.08 else f"/products/P{rng.randrange(1, 20000):06d}" if r < 0.6 else
                    rng.choice(CRAWLED_PATHS))
            return pick("crawler_methods"), path, pick("crawler_statuses"), "-"
        if kind == "client":
            return pick("client_methods"), rng.choice(CLIENT_PATHS), pick("client_statuses"), "-"
        method = pick("methods")
        path = rng.choice(PATHS)
        if path == "/" and rng.random() < 0.3:
            path = f"/products/P{rng.randrange(1, 20000):06d}"
        if rng.random() < 0.01:
            path = '/search?q=\\"quoted\\"+term'  # an escaped quote inside the request, as Apache logs it
        return method, path, pick("statuses"), rng.choice(REFERERS)


def generate(users: list[tuple[str, str]], lines: int, seed: int, start: datetime, end: datetime,
             malformed_pct: float = 0.0, utc_offset: str = "+0000") -> Iterator[bytes]:
    """Yield ``lines`` log lines (bytes with newline) in time order between ``start`` and ``end`` (UTC).

    ``users`` are (username, country) pairs from the source customers (none: every request
    is anonymous). Timestamps are written in ``utc_offset`` (e.g. ``-0700``) local time.
    The same arguments give the same lines.
    """
    rng = random.Random(seed)
    visitors = _Visitors(rng, users)
    kinds = _weighted(TRAFFIC)
    visitor = {"person": visitors.person, "crawler": visitors.crawler, "client": visitors.client}
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
        kind = rng.choices(*kinds)[0]
        username, ip, agent = visitor[kind]()
        method, path, status, referer = visitors.request(kind)
        size = "-" if status == 304 or method == "HEAD" else str(rng.randrange(200, 250_000))
        protocol = "HTTP/2.0" if rng.random() < 0.3 else "HTTP/1.1"
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
