"""Table metadata (extract_config/*.yaml): loading and validation.

Each YAML file is a mapping ``source_table_name -> entry``; an entry has exactly the seven
fields of the original design::

    columns:          [col, ...]            columns to extract, in order
    where_clause:     ""                     extra SQL boolean filter, may be empty
    is_incremental:   true                   false: full extract every run
    watermark_column: updated_datetime       monotonic change column (required when incremental)
    landing_table:    landing.mysql_orders   schema.table
    store_table:      store_mysql.orders     schema.table
    unique_columns:   [order_no]             business key of the store upsert

and optionally ``null_watermark_policy`` (``fail`` by default, ``include`` or
``exclude``): what an incremental extract does with rows whose watermark is NULL, and
``source: mysql`` (the default).

One entry (``extract_config/weblog.yaml``) declares the access-log source instead::

    access:
      source:         weblog
      columns:        {access_key: text, ..., country: varchar(2), ...}   column -> warehouse type
      landing_table:  landing.weblog_access
      store_table:    store_weblog.access
      unique_columns: [access_key]

Its columns are exactly the ones the access-log loader writes (``etl.weblog.enrich.COLUMNS``,
in any order), each with a type that holds its values (:data:`WEBLOG_TYPES`); its key is
``access_key``; its tables are no MySQL table's. :func:`load_weblog_source` returns it;
:func:`load_metadata` returns the MySQL tables only (and refuses a folder whose weblog
entry is wrong).

Validation happens in two steps: :func:`load_metadata` checks structure and identifiers
(no database needed); :func:`check_against_source` checks tables and columns against the
source's information_schema. Both raise :class:`ConfigError` naming file, table and field,
listing every problem found, not only the first.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

from etl.domain import QualifiedName, TableMeta
from etl.errors import ConfigError
from etl.weblog.enrich import COLUMNS as WEBLOG_COLUMNS, VALUE_KINDS as WEBLOG_VALUE_KINDS

IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
FIELDS = (
    "columns",
    "where_clause",
    "is_incremental",
    "watermark_column",
    "landing_table",
    "store_table",
    "unique_columns",
)
# optional fields beyond the original seven, with their defaults
OPTIONAL_FIELDS = {"null_watermark_policy": "fail", "source": "mysql"}
NULL_WATERMARK_POLICIES = ("fail", "include", "exclude")
SOURCES = ("mysql", "weblog")
WEBLOG_FIELDS = ("source", "columns", "landing_table", "store_table", "unique_columns")
WEBLOG_KEY = ("access_key",)  # <file identity>:<line number>, the loader's exactly-once key
# value kind (etl.weblog.enrich.VALUE_KINDS) -> (warehouse types that hold it, how to say so)
WEBLOG_TYPES = {
    "string": (re.compile(r"text|varchar\([1-9][0-9]{0,6}\)"), "text or varchar(n)"),
    "integer": (re.compile(r"smallint|integer|bigint"), "smallint, integer or bigint"),
    "boolean": (re.compile(r"boolean"), "boolean"),
    "timestamp": (re.compile(r"timestamp(\([0-6]\))?"), "timestamp or timestamp(p), p from 0 to 6"),
}


def is_identifier(name: object) -> bool:
    """True when ``name`` is a plain SQL identifier (letters, digits, _; at most 63 chars)."""
    return isinstance(name, str) and bool(IDENTIFIER_RE.match(name))


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it
_LOADED: dict = {}  # folder -> (file stats, tables, weblog source): see load_metadata


def _repeated_keys(path: Path, node, where: str = "", depth: int = 0) -> list[str]:
    """Keys given twice in one mapping of a YAML document (``node``: its composed root, or None).

    PyYAML keeps the last of two equal keys without a word, so a table defined twice in a
    file, or a field given twice, would silently replace the first. Returns one problem per
    repeated key, naming the file, both lines (1-based), the table and the field; nested
    mappings (e.g. the weblog ``columns``) are checked too.
    """
    if not isinstance(node, yaml.MappingNode):
        return []
    problems, first_line = [], {}
    for key_node, value_node in node.value:
        key, line = key_node.value, key_node.start_mark.line + 1
        label = f"table {key!r}" if depth == 0 else f"{where}: {'field' if depth == 1 else 'key'} {key!r}"
        if key in first_line:
            problems.append(f"{path}, line {line}: {label} is given twice (also on line {first_line[key]}); "
                            "keep one: YAML keeps only the last")
        else:
            first_line[key] = line
        problems.extend(_repeated_keys(path, value_node, label, depth + 1))
    return problems


def load_metadata(config_dir: str | Path) -> dict[str, TableMeta]:
    """Load and validate every ``*.yaml``/``*.yml`` file of ``config_dir``; return its MySQL tables.

    Returns ``{table_name: TableMeta}`` ordered by table name (a new dict each call); the
    weblog entry is not among them (see :func:`load_weblog_source`). The parsed result is
    kept per folder while its files' names, sizes and modification times stay the same:
    every Luigi task asks for it, and parsing costs milliseconds. Raises ConfigError when the
    folder holds no metadata, a file is not valid YAML, a table is defined twice (in two files or
    twice in one: :func:`_repeated_keys`) or a field twice, or any
    entry (the weblog entry included) breaks the rules above (all problems are listed in
    one message).
    """
    return dict(_load_folder(config_dir)[0])


def load_weblog_source(config_dir: str | Path) -> tuple[TableMeta, dict[str, str]]:
    """The access-log source declared in ``config_dir``: its ``TableMeta`` and ``{column: warehouse type}``.

    Read through the same cache as :func:`load_metadata` (and validated with the whole
    folder). Raises ConfigError when the folder declares no weblog source (the weblog chain
    cannot run without it: restore ``extract_config/weblog.yaml``) or anything in it is wrong.
    """
    weblog = _load_folder(config_dir)[1]
    if weblog is None:
        raise ConfigError(
            f"no weblog source declared in {str(config_dir)!r}: the access-log steps need the entry with "
            "'source: weblog' (its columns, their warehouse types and its tables); restore extract_config/weblog.yaml "
            "as the project ships it"
        )
    meta, types = weblog
    return meta, dict(types)


def _load_folder(config_dir: str | Path) -> tuple[dict[str, TableMeta], tuple[TableMeta, dict[str, str]] | None]:
    """Parse and validate every file of the folder (cached, see :func:`load_metadata`): (MySQL tables, weblog source)."""
    folder = Path(config_dir)
    if not folder.is_dir():
        raise ConfigError(
            f"extract_config_dir {str(folder)!r} is not a folder; set [dw_etl] extract_config_dir"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ConfigError(f"no *.yaml table metadata in {str(folder)!r}")
    stats = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    cached = _LOADED.get(str(folder.resolve()))
    if cached is not None and cached[0] == stats:
        return cached[1], cached[2]
    tables: dict[str, TableMeta] = {}
    weblog: tuple[TableMeta, dict[str, str]] | None = None
    declared: list[str] = []  # where weblog entries were found
    problems: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            document = yaml.load(text, Loader=_YAML_LOADER)
            problems.extend(_repeated_keys(path, yaml.compose(text, Loader=_YAML_LOADER)))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if document is None:
            continue
        if not isinstance(document, dict):
            problems.append(f"{path}: expected a mapping of table name -> metadata entry")
            continue
        for name, entry in document.items():
            source = entry.get("source", "mysql") if isinstance(entry, dict) else "mysql"
            if source == "weblog":
                parsed, entry_problems = _parse_weblog_entry(str(path), name, entry)
                if declared:
                    entry_problems.insert(0, f"{path}: weblog source {name!r}: a weblog source is already declared in "
                                             f"{declared[0]}; the access logs have one declaration")
                elif parsed is not None:
                    weblog = parsed
                declared.append(f"{path} ({name!r})")
                problems.extend(entry_problems)
                continue
            if source != "mysql":
                problems.append(f"{path}: table {name!r}, field 'source': {source!r} is not one of {', '.join(SOURCES)}")
                continue
            if name in tables:
                problems.append(f"{path}: table {name!r} is already defined in {tables[name].source_file}")
                continue
            meta, entry_problems = _parse_entry(str(path), name, entry)
            problems.extend(entry_problems)
            if meta is not None:
                tables[meta.name] = meta
    _check_target_names_unique(tables, problems)
    if weblog is not None:
        _check_weblog_targets(weblog[0], tables, problems)
    if problems:
        raise ConfigError("invalid table metadata:\n  " + "\n  ".join(problems))
    result = dict(sorted(tables.items()))
    _LOADED[str(folder.resolve())] = (stats, result, weblog)
    return result, weblog


def _parse_entry(path: str, name: object, entry: object) -> tuple[TableMeta | None, list[str]]:
    where = f"{path}: table {name!r}"
    if not is_identifier(name):
        return None, [f"{where}: the table name is not an identifier (letters, digits, _)"]
    if not isinstance(entry, dict):
        return None, [f"{where}: expected a mapping with the fields {', '.join(FIELDS)}"]
    problems = [f"{where}: field {key!r} is missing" for key in FIELDS if key not in entry]
    allowed = FIELDS + tuple(OPTIONAL_FIELDS)
    problems += [f"{where}: unknown field {key!r} (allowed: {', '.join(allowed)})" for key in entry if key not in allowed]
    if problems:
        return None, problems

    columns = _identifier_list(entry["columns"], f"{where}, field 'columns'", problems)
    unique = _identifier_list(entry["unique_columns"], f"{where}, field 'unique_columns'", problems)
    if len(set(columns)) != len(columns):
        problems.append(f"{where}, field 'columns': a column is listed twice")
    for col in unique:
        if col not in columns:
            problems.append(f"{where}, field 'unique_columns': {col!r} is not in 'columns'")

    is_incremental = entry["is_incremental"]
    if not isinstance(is_incremental, bool):
        problems.append(f"{where}, field 'is_incremental': expected true or false, got {is_incremental!r}")
    watermark = entry["watermark_column"] or None
    if watermark is not None:
        if not is_identifier(watermark):
            problems.append(f"{where}, field 'watermark_column': {watermark!r} is not an identifier")
        elif watermark not in columns:
            problems.append(f"{where}, field 'watermark_column': {watermark!r} is not in 'columns'")
    elif is_incremental is True:
        problems.append(f"{where}, field 'watermark_column': required when is_incremental is true")

    where_clause = entry["where_clause"] or ""
    if not isinstance(where_clause, str):
        problems.append(f"{where}, field 'where_clause': expected an SQL boolean expression string")
        where_clause = ""
    elif ";" in where_clause:
        problems.append(f"{where}, field 'where_clause': must be one boolean expression (no ';')")

    policy = entry.get("null_watermark_policy", OPTIONAL_FIELDS["null_watermark_policy"])
    if policy not in NULL_WATERMARK_POLICIES:
        problems.append(f"{where}, field 'null_watermark_policy': {policy!r} is not one of {', '.join(NULL_WATERMARK_POLICIES)}")
    landing = _qualified(entry["landing_table"], f"{where}, field 'landing_table'", problems)
    store = _qualified(entry["store_table"], f"{where}, field 'store_table'", problems)
    if problems:
        return None, problems
    return (
        TableMeta(
            name=name,
            columns=tuple(columns),
            where_clause=where_clause.strip(),
            is_incremental=is_incremental,
            watermark_column=watermark,
            landing_table=landing,
            store_table=store,
            unique_columns=tuple(unique),
            source_file=path,
            null_watermark_policy=policy,
        ),
        [],
    )


def _identifier_list(value: object, where: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: expected a non-empty list of column names")
        return []
    bad = [v for v in value if not is_identifier(v)]
    for item in bad:
        problems.append(f"{where}: {item!r} is not an identifier (letters, digits, _)")
    return [v for v in value if is_identifier(v)]


def _qualified(value: object, where: str, problems: list[str]) -> QualifiedName | None:
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 2 or not all(is_identifier(p) for p in parts):
        problems.append(f"{where}: {value!r} must be schema.table with identifier parts")
        return None
    return QualifiedName(parts[0], parts[1])


def _check_target_names_unique(tables: dict[str, TableMeta], problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for meta in tables.values():
        for target in (meta.landing_table, meta.store_table):
            other = seen.setdefault(str(target), meta.name)
            if other != meta.name:
                problems.append(f"{meta.source_file}: table {meta.name!r}: {target} is also used by {other!r}")


def _parse_weblog_entry(path: str, name: object, entry: dict) -> tuple[tuple[TableMeta, dict[str, str]] | None, list[str]]:
    """The weblog declaration -> (TableMeta, {column: type}), or None and the problems found."""
    where = f"{path}: weblog source {name!r}"
    if not is_identifier(name):
        return None, [f"{where}: the entry name is not an identifier (letters, digits, _)"]
    problems = [f"{where}: field {key!r} is missing" for key in WEBLOG_FIELDS if key not in entry]
    problems += [f"{where}: unknown field {key!r} (allowed: {', '.join(WEBLOG_FIELDS)})"
                 for key in entry if key not in WEBLOG_FIELDS]
    if problems:
        return None, problems

    types = _weblog_columns(entry["columns"], f"{where}, field 'columns'", problems)
    unique = _identifier_list(entry["unique_columns"], f"{where}, field 'unique_columns'", problems)
    columns = entry["columns"] if isinstance(entry["columns"], dict) else {}
    for col in unique:
        if col not in columns:
            problems.append(f"{where}, field 'unique_columns': {col!r} is not in 'columns'")
    if unique and tuple(unique) != WEBLOG_KEY and all(col in columns for col in unique):
        problems.append(f"{where}, field 'unique_columns': must be [{', '.join(WEBLOG_KEY)}], the key the loader "
                        "makes unique (<file identity>:<line number>); another key would merge or split log lines")
    landing = _qualified(entry["landing_table"], f"{where}, field 'landing_table'", problems)
    store = _qualified(entry["store_table"], f"{where}, field 'store_table'", problems)
    if landing is not None and landing == store:
        problems.append(f"{where}, field 'store_table': {store} is also the landing table")
    if problems:
        return None, problems
    meta = TableMeta(
        name=name,
        columns=tuple(types),
        where_clause="",
        is_incremental=False,
        watermark_column=None,
        landing_table=landing,
        store_table=store,
        unique_columns=tuple(unique),
        source_file=path,
    )
    return (meta, types), []


def _weblog_columns(value: object, where: str, problems: list[str]) -> dict[str, str]:
    """The declared ``{column: type}`` (types lower-cased), checked against what the loader writes."""
    if not isinstance(value, dict) or not value:
        problems.append(f"{where}: expected a mapping of column name -> warehouse type (access_key: text, ...)")
        return {}
    types: dict[str, str] = {}
    for column, type_ in value.items():
        if not is_identifier(column):
            problems.append(f"{where}: {column!r} is not an identifier (letters, digits, _)")
            continue
        if column not in WEBLOG_VALUE_KINDS:
            close = difflib.get_close_matches(column, [c for c in WEBLOG_COLUMNS if c not in value], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: {column!r} is not a column the access-log loader writes{hint}; "
                            f"it writes {', '.join(WEBLOG_COLUMNS)}")
            continue
        pattern, allowed = WEBLOG_TYPES[WEBLOG_VALUE_KINDS[column]]
        spelled = type_.strip().lower() if isinstance(type_, str) else None
        if spelled is None or not pattern.fullmatch(spelled):
            problems.append(f"{where}: column {column!r}: type {type_!r} is not {allowed} "
                            f"(the loader writes {WEBLOG_VALUE_KINDS[column]} values)")
            continue
        types[column] = spelled
    for column in WEBLOG_COLUMNS:
        if column not in value:
            problems.append(f"{where}: column {column!r} is missing (the access-log loader writes it; declare its type)")
    return types


def _check_weblog_targets(weblog: TableMeta, tables: dict[str, TableMeta], problems: list[str]) -> None:
    used = {}
    for meta in tables.values():
        for field, target in (("landing_table", meta.landing_table), ("store_table", meta.store_table)):
            used.setdefault(target, (meta, field))
    for field, target in (("landing_table", weblog.landing_table), ("store_table", weblog.store_table)):
        if target in used:
            meta, other = used[target]
            problems.append(f"{weblog.source_file}: weblog source {weblog.name!r}, field {field!r}: {target} is also "
                            f"the {other} of table {meta.name!r} ({meta.source_file})")


def check_against_source(
    tables: dict[str, TableMeta], source_columns: dict[str, dict[str, object]], database: str
) -> None:
    """Check that every table and column exists in the source.

    ``source_columns`` maps source table name -> {column name -> type info} as read from
    information_schema (see ``etl.source_mysql.read_column_types``). Raises ConfigError
    listing every missing table or column with the file that names it.
    """
    problems = []
    for meta in tables.values():
        found = source_columns.get(meta.name)
        if found is None:
            problems.append(
                f"{meta.source_file}: table {meta.name!r}: no such table in source database {database!r}"
            )
            continue
        for col in meta.columns:
            if col not in found:
                problems.append(
                    f"{meta.source_file}: table {meta.name!r}, field 'columns': column {col!r} "
                    f"does not exist in {database}.{meta.name}"
                )
    if problems:
        raise ConfigError("table metadata does not match the source:\n  " + "\n  ".join(problems))
