"""Checking every configuration value before anything runs: type, range, allowed words, unknown keys.

The keys and their defaults are declared by the ``luigi.Config`` classes (``etl.config``,
``etl.quality``); :data:`RULES` says what each key accepts. :func:`check` reads every key's
value the way Luigi will (a command line flag ``--<section>-<key>`` first, then the config
files, then the default), parses it with the parameter's own Luigi parse function and
applies the key's range; it also refuses a key the pipeline's sections do not declare (a
typo would otherwise be silently replaced by the default). All problems come in one
ConfigError, one per line, each naming section, key, value, where the value was set (the
config file that defines it, the last one read winning, or the command line flag) and the
accepted form. Secret values (passwords, the ipinfo token) are never shown. The same knowledge
of where a value was set gives :func:`base_folder`, the folder a relative path resolves against.
"""

from __future__ import annotations

import configparser
import difflib
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from urllib.parse import urlsplit

import luigi
import luigi.retcodes
from luigi.cmdline_parser import CmdlineParser
from luigi.parameter import ParameterVisibility

from etl.errors import ConfigError

# A watermark window starts lookback_seconds before the committed watermark, a value of the
# source's change column: at the earliest 1000-01-01, the start of MySQL's and MariaDB's
# DATETIME range. Python represents nothing before datetime.min (0001-01-01), so a look-back
# (or safety lag, subtracted from the source clock) of more seconds than lie between the two
# leaves the representable dates: datetime raises OverflowError.
OLDEST_SOURCE_DATETIME = datetime(1000, 1, 1)
MAX_WINDOW_SECONDS = int((OLDEST_SOURCE_DATETIME - datetime.min).total_seconds())
MAX_WAIT_SECONDS = int(threading.TIMEOUT_MAX)  # the longest time.sleep / socket timeout the platform takes
MAX_SEQUENCE = 2**31 - 1  # execution sequences are PostgreSQL integers
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")  # S3 bucket naming rules
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_ENV_REFERENCE = re.compile(r"\$\{([^}]+)\}")  # Luigi's EnvironmentInterpolation


@dataclass(frozen=True)
class Rule:
    """What one key accepts: ``valid(value)`` on the value parsed by the key's Luigi parameter,
    and ``accepted``, the form for messages ("an integer between 1 and 65535")."""

    accepted: str
    valid: Callable[[Any], bool] = lambda value: True


def integer(low: int, high: int | None = None) -> Rule:
    """An integer ``>= low`` (and ``<= high``)."""
    span = f">= {low}" if high is None else f"between {low} and {high}"
    return Rule(f"an integer {span}", lambda v: v >= low and (high is None or v <= high))


def number(low: float, high: float, low_included: bool = True, unit: str = "") -> Rule:
    """A finite number in ``[low, high]`` (``(low, high]`` when not ``low_included``)."""
    what = f"a number of {unit}" if unit else "a number"
    span = (f"between {_shown(low)} and {_shown(high)}" if low_included
            else f"> {_shown(low)} and at most {_shown(high)}")
    return Rule(f"{what} {span}",
                lambda v: math.isfinite(v) and (v >= low if low_included else v > low) and v <= high)


def _shown(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def one_of(*words: str) -> Rule:
    """One of ``words`` (exactly as written)."""
    return Rule(f"one of {', '.join(words)}", lambda v: v in words)


def _http_url(value: str, path: bool) -> bool:
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError: not a number, or above 65535
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0
            and not parts.query and not parts.fragment and (path or parts.path in ("", "/")))


def _staging_uri(value: str) -> bool:
    if value.startswith("s3:") or (_SCHEME.match(value) and "://" in value):
        parts = urlsplit(value)
        return (value.startswith("s3://") and bool(_BUCKET.fullmatch(parts.netloc))
                and not parts.query and not parts.fragment)
    return _path(value)


def _path(value: str) -> bool:
    return bool(value.strip()) and "\0" not in value


def _name(value: str) -> bool:
    return bool(value) and not any(c.isspace() for c in value)


BOOLEAN = Rule("true or false")  # Luigi's BoolParameter.parse takes true/false in any case, nothing else
TEXT = Rule("any text")
NAME = Rule("a name without spaces (not empty)", _name)
FOLDER = Rule("a folder path (not empty)", _path)
OPTIONAL_FOLDER = Rule("a folder path, or empty for the project's own", lambda v: v == "" or _path(v))
PORT = Rule("a TCP port, an integer between 1 and 65535", lambda v: 1 <= v <= 65535)
SECONDS = Rule(f"an integer number of seconds between 0 and {MAX_WINDOW_SECONDS} (further back than "
               f"{OLDEST_SOURCE_DATETIME:%Y-%m-%d}, the oldest MySQL DATETIME, a window would start before "
               "0001-01-01, the oldest date Python represents)", lambda v: 0 <= v <= MAX_WINDOW_SECONDS)
COUNT = integer(1)
LEVEL = one_of("warn", "fail", "off")  # etl.quality.LEVELS
EXIT_CODE = integer(0, 255)

RULES: dict[str, dict[str, Rule]] = {
    "mysql": {"host": NAME, "port": PORT, "user": NAME, "password": TEXT, "database": NAME},
    "warehouse": {"flavor": one_of("postgres", "redshift"), "host": NAME, "port": PORT, "user": NAME,
                  "password": TEXT, "database": NAME, "iam_role": TEXT},
    "staging": {
        "uri": Rule("a local folder path, or s3://bucket[/prefix] (a valid S3 bucket name)", _staging_uri),
        "s3_endpoint_url": Rule("empty (AWS), or an http(s)://host[:port] URL",
                                lambda v: v == "" or _http_url(v, path=False)),
    },
    "weblog": {"paths": TEXT, "rejects_dir": FOLDER},
    "ipinfo": {"token": TEXT, "api_url": Rule("an http(s)://host[:port][/path] URL", lambda v: _http_url(v, path=True)),
               "timeout_seconds": number(0, MAX_WAIT_SECONDS, low_included=False, unit="seconds")},
    "dw_etl": {
        "extract_config_dir": OPTIONAL_FOLDER, "sql_dir": OPTIONAL_FOLDER, "output_dir": FOLDER,
        "completed_dir": FOLDER, "reports_dir": FOLDER,
        "log_dir": Rule("a folder path, or empty for var/log", lambda v: v == "" or _path(v)),
        "lookback_seconds": SECONDS, "safety_lag_seconds": SECONDS,
        "batch_rows": COUNT, "landing_keep_sequences": integer(1, MAX_SEQUENCE), "parallel_copies": COUNT,
        "parallel_copy_min_rows": COUNT, "pres_connections": integer(1, 16), "detect_hard_deletes": BOOLEAN, "stream_landing": BOOLEAN,
        # 2^(retry_count - 1) must be a float (the backoff doubles the delay); see _retry_problems
        "retry_count": integer(0, 1024), "retry_delay_seconds": number(0, MAX_WAIT_SECONDS, unit="seconds"),
        "max_delete_fraction": number(0, 1), 
        "keep_runs": Rule(f"an integer between 1 and {MAX_SEQUENCE} (the runs whose numbered folders output/, completed/, "
                          "reports/ and rejects/ keep; default 30)", integer(1, MAX_SEQUENCE).valid),
        "allow_deletes": Rule("table names, comma or space separated, or *"), "group_readable": BOOLEAN,
    },
    "quality": {"count_mismatch": LEVEL, "duplicate_keys": LEVEL, "null_keys": LEVEL, "unknown_members": LEVEL},
    # Luigi's own section, but the pipeline gives it defaults (etl.config.apply_retcode_defaults): a
    # process exit code is 0..255; keys are Luigi's, so they are not checked for typos here
    "retcode": {key: EXIT_CODE for key in ("already_running", "missing_data", "not_run", "task_failed",
                                           "scheduling_error", "unhandled_exception")},
}
FOREIGN_SECTIONS = ("retcode",)  # values checked, keys left to Luigi


def pipeline_sections() -> dict[str, type]:
    """The pipeline's own ``luigi.Config`` classes imported so far, by section name (classes of ``etl.*``)."""
    found, pending = {}, list(luigi.Config.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] == "etl":
            found[cls.get_task_family()] = cls
    order = list(RULES)
    return dict(sorted(found.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def check() -> None:
    """Check every key of the pipeline's sections (and ``[retcode]``); returns None when all are usable.

    Raises ConfigError listing every problem, one per line: a value that does not parse or
    lies outside its range, a key the section does not declare, ``LUIGI_CONFIG_PATH`` naming
    no file. Reads the parsed configuration (``luigi.configuration.get_config()``) and the
    command line being run (``CmdlineParser``); opens the config files only to say which one
    set a wrong value.
    """
    problems = _missing_config_file()
    sections = pipeline_sections()
    values: dict[tuple[str, str], Any] = {}
    for section, cls in sections.items():
        for key, param in cls.get_params():
            problem, values[section, key] = _value_problem(section, key, param)
            if problem:
                problems.append(problem)
        problems += _unknown_keys(section, [key for key, _ in cls.get_params()])
    for key, param in luigi.retcodes.retcode.get_params():
        problem, _ = _value_problem("retcode", key, param)
        problems += [problem] if problem else []
    problems += _retry_problems(values.get(("dw_etl", "retry_count")), values.get(("dw_etl", "retry_delay_seconds")))
    if problems:
        count = f"{len(problems)} value{'s' if len(problems) > 1 else ''}"
        raise ConfigError(f"the configuration has {count} the pipeline cannot use; fix each where it is set "
                          "(nothing was run):\n  " + "\n  ".join(problems))


def flag(section: str, key: str) -> str:
    """The command line flag that sets ``[section] key``: ``--dw-etl-lookback-seconds``."""
    return "--" + f"{section}_{key}".replace("_", "-")


def where(section: str, key: str) -> str:
    """Where ``[section] key``'s value comes from, to follow "set": ``by the command line flag --...``,
    ``in <path>`` of the last config file read that sets it (it wins), or ``in the configuration`` (set by
    code, or a file format not inspected)."""
    if _from_command_line(section, key) is not None:
        return f"by the command line flag {flag(section, key)}"
    files = _defining_files(section, key)
    return f"in {files[-1]}" if files else "in the configuration"


def base_folder(section: str, key: str) -> tuple[str, str]:
    """The folder a relative path in ``[section] key`` resolves against, and why, for messages.

    Returns ``(absolute folder, reason)``. A value given by the command line flag: the working
    directory (where the command was typed). A value from a config file: the folder of the
    last file read that sets it (the one :func:`where` names, whose value wins). A key no file
    sets (its default): the folder of the last config file Luigi read, the one whose values
    win; with no file read, the working directory. The reason reads after the folder:
    ``"the folder of /srv/dw/luigi.cfg, which sets [dw_etl] output_dir"``. Raises ConfigError when
    the answer is the working directory and it no longer exists.
    """
    if _from_command_line(section, key) is not None:
        return (_working_directory(section, key),
                f"the working directory, as {flag(section, key)} is given on the command line")
    files = _defining_files(section, key)
    if files:
        return os.path.dirname(files[-1]), f"the folder of {files[-1]}, which sets [{section}] {key}"
    read = _read_files()
    if read:
        return (os.path.dirname(read[-1]),
                f"the folder of {read[-1]}, the last configuration file read ([{section}] {key} is not set)")
    return _working_directory(section, key), "the working directory (no configuration file was read)"


def _working_directory(section: str, key: str) -> str:
    try:
        return os.getcwd()
    except OSError as exc:
        raise ConfigError(f"[{section}] {key} is a relative path and resolves against the working directory, which "
                          f"cannot be read ({exc.strerror}: removed?); start the job from an existing directory, or "
                          "give an absolute path") from None


def _read_files() -> list[str]:
    """The config files Luigi read (those of its list that exist), absolute, in reading order."""
    paths = getattr(type(luigi.configuration.get_config()), "_config_paths", [])
    return [os.path.abspath(path) for path in paths if os.path.isfile(path)]


_NOT_SET = object()


def _from_command_line(section: str, key: str):
    """The flag's value, or None; like Luigi (``Parameter._parse_or_no_value``), an empty one is no value."""
    parser = CmdlineParser.get_instance()
    found = None if parser is None else getattr(parser.known_args, f"{section}_{key}", None)
    return found or None


def _raw_value(section: str, key: str):
    """The value Luigi will take for ``[section] key`` before parsing (command line, then files), else _NOT_SET."""
    found = _from_command_line(section, key)
    if found is not None:
        return found
    try:
        return luigi.configuration.get_config().get(section, key)
    except (configparser.NoSectionError, configparser.NoOptionError, KeyError):
        return _NOT_SET


def _value_problem(section: str, key: str, param) -> tuple[str | None, Any]:
    """(the problem line or None, the parsed value or None) of one key."""
    secret = param.visibility == ParameterVisibility.PRIVATE
    try:
        raw = _raw_value(section, key)
    except configparser.Error as exc:  # a lone % (BasicInterpolation), ${UNSET} (Luigi's env interpolation)
        return f"[{section}] {key} (set {where(section, key)}) cannot be read: {_unreadable(section, key, exc)}", None
    if raw is _NOT_SET:
        return None, param.task_value(section, key)  # the declared default
    rule = RULES.get(section, {}).get(key) or _rule_of_type(param)
    try:
        value = param.parse(raw)
        usable = rule.valid(value)
    except (ValueError, TypeError, OverflowError):
        value, usable = None, False
    if usable:
        return None, value
    shown = "(hidden)" if secret else repr(raw if isinstance(raw, str) else str(raw).lower())
    return f"[{section}] {key} = {shown} (set {where(section, key)}) must be {rule.accepted}", None


def _unreadable(section: str, key: str, exc: configparser.Error) -> str:
    """Why Luigi's interpolation cannot read a value, and what to write instead (never the value: it
    may be a password; an environment variable's name is shown)."""
    raw = luigi.configuration.get_config().get(section, key, raw=True)
    unset = [name for name in _ENV_REFERENCE.findall(raw) if name not in os.environ]
    if unset:
        return (f"it names the environment variable {unset[0]}, which is not set; set it for the run, or "
                "leave ${...} out")
    return f"{type(exc).__name__}: a literal % is written %%, and %(name)s names another key of the section"


def _rule_of_type(param) -> Rule:
    """A key without an entry in RULES is still checked for its parameter's type."""
    if isinstance(param, luigi.BoolParameter):
        return BOOLEAN
    if isinstance(param, luigi.IntParameter):
        return Rule("an integer")
    if isinstance(param, luigi.FloatParameter):
        return Rule("a number", math.isfinite)
    return TEXT


def _unknown_keys(section: str, known: list[str]) -> list[str]:
    """One problem per key of ``[section]`` in the configuration that the section does not declare."""
    config = luigi.configuration.get_config()
    if section in FOREIGN_SECTIONS or not isinstance(config, configparser.ConfigParser) \
            or not config.has_section(section):
        return []
    defaults = set(config.defaults())  # [DEFAULT] keys reach every section by design
    problems = []
    for key in config.options(section):
        if key in defaults or key.replace("-", "_") in known:  # Luigi also reads dash-style keys
            continue
        guess = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {guess[0]}?" if guess else ""
        files = ", ".join(_defining_files(section, key)) or "the configuration"
        problems.append(f"[{section}] {key} (set in {files}) is not a key of [{section}]{hint} Nothing reads it, "
                        f"so its setting would be lost; rename or remove it. The keys of [{section}]: "
                        f"{', '.join(sorted(known))}")
    return problems


def _defining_files(section: str, key: str) -> list[str]:
    """The config files Luigi read that set ``[section] key`` (dash-style spelling included), in reading order."""
    found = []
    for path in _read_files():
        if path.endswith(".toml"):
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if parser.has_section(section) and any(k in parser[section] for k in (key, key.replace("_", "-"))):
            found.append(path)
    return found


def _missing_config_file() -> list[str]:
    named = os.environ.get("LUIGI_CONFIG_PATH")
    if named is None or os.path.isfile(named):
        return []
    return [f"LUIGI_CONFIG_PATH = {named!r} is not a file, so none of its settings were read (Luigi only warns); "
            "correct the variable or create the file"]


def _retry_problems(count, delay) -> list[str]:
    """The backoff's last wait, ``retry_delay_seconds * 2^(retry_count - 1)``, must be one time.sleep takes."""
    if not count or not delay or math.log2(delay) + count - 1 <= math.log2(MAX_WAIT_SECONDS):
        return []
    return [f"[dw_etl] retry_count = {count} (set {where('dw_etl', 'retry_count')}) with retry_delay_seconds = "
            f"{_shown(delay)} (set {where('dw_etl', 'retry_delay_seconds')}): the last wait, retry_delay_seconds * "
            f"2^(retry_count - 1), must be at most {MAX_WAIT_SECONDS} seconds; lower either"]
