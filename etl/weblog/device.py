"""User agent -> device, device type, OS and browser family (via the ua-parser library).

Devices (the dashboard's device groups): Android, iPhone, iPad, Windows, Macintosh, Other. Device types:
mobile, tablet, desktop, bot, other. Rules, applied to ua-parser's result:

* a bot or crawler is device ``Other`` and type ``bot``, whatever device it imitates
  (Googlebot smartphone, bingbot on iPhone). It is a bot when ua-parser names it a spider
  (device family ``Spider``: the library's own crawler detection, which knows Googlebot,
  bingbot, AhrefsBot, YandexBot, ... and any agent with a bot/crawl/spider token near its
  start); or when the agent or ua-parser's agent family has a bot token anywhere
  (``bot``, ``crawler``, ``spider``, ``slurp``, ...); or when the agent carries a contact
  address (an ``http(s)://`` URL or an e-mail address), the way crawlers identify themselves
  and browsers never do (``Ezooms/1.0; help@moz.com``, which ua-parser does not know);
* iOS on an iPhone/iPod -> iPhone/mobile (iPod -> Other/mobile); iOS on an iPad -> iPad/tablet;
* Android -> Android; type tablet when the agent has no ``Mobile`` token (Google's own
  convention for Android tablets) or ua-parser says it is a tablet, else mobile;
* Windows (not Windows Phone) -> Windows/desktop; Mac OS X/macOS -> Macintosh/desktop.
  iPadOS 13+ Safari in its default "desktop mode" sends a Macintosh agent and is
  indistinguishable from a Mac by the agent alone: it is counted as Macintosh;
* command-line clients and libraries (curl, Wget, python-requests) and anything else ->
  Other/other (they are not crawlers: they do not crawl, and the agent says nothing of who
  runs them); other desktop systems (Linux, Chrome OS) -> Other/desktop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

DEVICES = ("Android", "iPhone", "iPad", "Windows", "Macintosh", "Other")
_BOT_WORDS = ("bot", "crawler", "spider", "slurp", "bingpreview", "facebookexternalhit")
"""Tokens that make an agent a bot anywhere in it: ua-parser's spider rule looks for them only
near an agent's start, and not once a phone's own rule matched (Bytespider on Android)."""
_CONTACT = re.compile(r"https?://|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
"""A contact URL or e-mail address in an agent: a self-identifying crawler."""
_DESKTOP_OS = ("Linux", "Ubuntu", "Fedora", "Chrome OS", "ChromeOS", "FreeBSD", "OpenBSD", "Debian")


@dataclass(frozen=True)
class DeviceInfo:
    """Classification of one user agent."""

    device: str
    device_type: str
    os_family: str
    browser_family: str


@lru_cache(maxsize=100_000)
def classify(user_agent: str) -> DeviceInfo:
    """Classify a user-agent string (cached per distinct string). Never raises."""
    if not user_agent or user_agent == "-":
        return DeviceInfo("Other", "other", "", "")
    result = parse(user_agent)
    os_family = result.os.family if result.os else ""
    browser = result.user_agent.family if result.user_agent else ""
    device_family = result.device.family if result.device else ""
    brand = result.device.brand if result.device else ""
    lowered = f"{browser} {user_agent}".lower()
    if device_family == "Spider" or any(word in lowered for word in _BOT_WORDS) or _CONTACT.search(user_agent):
        return DeviceInfo("Other", "bot", os_family, browser)
    if os_family == "iOS":
        if device_family == "iPad":
            return DeviceInfo("iPad", "tablet", os_family, browser)
        if device_family == "iPhone":
            return DeviceInfo("iPhone", "mobile", os_family, browser)
        return DeviceInfo("Other", "mobile", os_family, browser)
    if os_family == "Android":
        tablet = "Mobile" not in user_agent or "Tablet" in (brand or "") or "tablet" in device_family.lower()
        return DeviceInfo("Android", "tablet" if tablet else "mobile", os_family, browser)
    if os_family.startswith("Windows"):
        if "Phone" in os_family:
            return DeviceInfo("Other", "mobile", os_family, browser)
        return DeviceInfo("Windows", "desktop", os_family, browser)
    if os_family in ("Mac OS X", "macOS", "Mac OS"):
        return DeviceInfo("Macintosh", "desktop", os_family, browser)
    if os_family in _DESKTOP_OS:
        return DeviceInfo("Other", "desktop", os_family, browser)
    return DeviceInfo("Other", "other", os_family, browser)
