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
``exclude``): what an incremental extract does with rows whose watermark is NULL,
``unique_check`` (``source_key`` by default, or ``distinct_count``): how preflight makes sure
``unique_columns`` is unique in the source, and ``source: mysql`` (the default).
``where_clause`` must be one boolean expression (:mod:`etl.where_clause`); no landing or
store table may be another's, the weblog source's, or in a reserved schema
(:data:`RESERVED_SCHEMAS`).

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
source's information_schema (``etl.context.preflight`` adds the checks that query the
source). Both raise :class:`ConfigError` naming file, line (:func:`position`), table and
field, listing every problem found, not only the first.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
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
OPTIONAL_FIELDS = {"null_watermark_policy": "fail", "source": "mysql", "unique_check": "source_key"}
NULL_WATERMARK_POLICIES = ("fail", "include", "exclude")
# source_key: unique_columns must hold a primary or unique key of the source table (information_schema);
# distinct_count: no such key (a view, a table without one): preflight counts the rows and distinct keys instead
UNIQUE_CHECKS = ("source_key", "distinct_count")
# warehouse schemas the pipeline itself writes (control tables, presentation) or the server owns:
# a landing or store table there would overwrite or be overwritten
RESERVED_SCHEMAS = ("etl_control", "pres", "information_schema", "pg_catalog")
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


_LINES: dict = {}  # file path -> ((mtime_ns, size), {table: (line, {field: line})}): see position


def _entry_lines(node) -> dict[str, tuple[int, dict[str, int]]]:
    """``{table: (line of its name, {field: line of the field's name})}`` of a composed YAML document
    (1-based; of repeated keys the last, which is the one YAML keeps); {} for anything but a mapping."""
    lines: dict[str, tuple[int, dict[str, int]]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            fields = {}
            if isinstance(value_node, yaml.MappingNode):
                fields = {field.value: field.start_mark.line + 1 for field, _ in value_node.value}
            lines[str(key_node.value)] = (key_node.start_mark.line + 1, fields)
    return lines


def _remember_lines(path: Path, node) -> None:
    stat = path.stat()
    _LINES[str(path)] = ((stat.st_mtime_ns, stat.st_size), _entry_lines(node))


def _lines_of(path: str) -> dict[str, tuple[int, dict[str, int]]]:
    """The entry lines of the YAML file ``path`` (cached while its size and mtime stay; {} when unreadable)."""
    try:
        stat = Path(path).stat()
        cached = _LINES.get(path)
        if cached is not None and cached[0] == (stat.st_mtime_ns, stat.st_size):
            return cached[1]
        _remember_lines(Path(path), yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=_YAML_LOADER))
        return _LINES[path][1]
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}


def _place(path: str, table: object, field: str | None = None) -> str:
    table_line, fields = _lines_of(path).get(str(table), (None, {}))
    line = fields.get(field, table_line) if field else table_line
    return f"line {line} of {path}" if line else path


def position(meta: TableMeta, field: str | None = None) -> str:
    """Where ``meta``'s entry (or its ``field``) is written: ``line N of <file>`` (the file alone when
    the line cannot be found, e.g. the file changed since). For messages; raises nothing."""
    return _place(meta.source_file, meta.name, field)


def heading(meta: TableMeta, field: str | None = None) -> str:
    """The head of a message about ``meta`` (or its ``field``): ``line N of <file>: table 'x', field 'y'``."""
    return _place(meta.source_file, meta.name, field) + f": table {meta.name!r}" + (f", field {field!r}" if field else "")


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
    claims: list[_Claim] = []  # every well-formed landing/store name, of well-formed entries or not
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            document = yaml.load(text, Loader=_YAML_LOADER)
            node = yaml.compose(text, Loader=_YAML_LOADER)
            problems.extend(_repeated_keys(path, node))
            _remember_lines(path, node)
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
                    entry_problems.insert(0, f"{_place(str(path), name)}: weblog source {name!r}: a weblog source is "
                                             f"already declared in {declared[0]}; the access logs have one declaration")
                else:
                    claims += _claims("weblog source", name, str(path), entry)
                    if parsed is not None:
                        weblog = parsed
                declared.append(f"{path} ({name!r})")
                problems.extend(entry_problems)
                continue
            if source != "mysql":
                problems.append(f"{_place(str(path), name, 'source')}: table {name!r}, field 'source': {source!r} "
                                f"is not one of {', '.join(SOURCES)}")
                continue
            if name in tables:
                problems.append(f"{_place(str(path), name)}: table {name!r} is already defined in "
                                f"{position(tables[name])}")
                continue
            meta, entry_problems = _parse_entry(str(path), name, entry)
            problems.extend(entry_problems)
            claims += _claims("table", name, str(path), entry)
            if meta is not None:
                tables[meta.name] = meta
    _check_targets(claims, problems)
    if problems:
        raise ConfigError("invalid table metadata:\n  " + "\n  ".join(problems))
    result = dict(sorted(tables.items()))
    _LOADED[str(folder.resolve())] = (stats, result, weblog)
    return result, weblog


def _parse_entry(path: str, name: object, entry: object) -> tuple[TableMeta | None, list[str]]:
    """One MySQL table's entry -> (TableMeta, []) or (None, the problems found, each naming file, line, table, field)."""

    def at(field: str | None = None) -> str:
        return f"{_place(path, name, field)}: table {name!r}" + (f", field {field!r}" if field else "")

    if not is_identifier(name):
        return None, [f"{at()}: the table name is not an identifier (letters, digits, _)"]
    if not isinstance(entry, dict):
        return None, [f"{at()}: expected a mapping with the fields {', '.join(FIELDS)}"]
    problems = [f"{at()}: field {key!r} is missing" for key in FIELDS if key not in entry]
    allowed = FIELDS + tuple(OPTIONAL_FIELDS)
    problems += [f"{_place(path, name, key)}: table {name!r}: unknown field {key!r} (allowed: {', '.join(allowed)})"
                 for key in entry if key not in allowed]
    if problems:
        return None, problems

    columns = _identifier_list(entry["columns"], at("columns"), problems)
    unique = _identifier_list(entry["unique_columns"], at("unique_columns"), problems)
    if len(set(columns)) != len(columns):
        problems.append(f"{at('columns')}: a column is listed twice")
    for col in unique:
        if col not in columns:
            problems.append(f"{at('unique_columns')}: {col!r} is not in 'columns'")

    is_incremental = entry["is_incremental"]
    if not isinstance(is_incremental, bool):
        problems.append(f"{at('is_incremental')}: expected true or false, got {is_incremental!r}")
    watermark = entry["watermark_column"] or None
    if watermark is not None:
        if not is_identifier(watermark):
            problems.append(f"{at('watermark_column')}: {watermark!r} is not an identifier")
        elif watermark not in columns:
            problems.append(f"{at('watermark_column')}: {watermark!r} is not in 'columns'")
    elif is_incremental is True:
        problems.append(f"{at('watermark_column')}: required when is_incremental is true")

    where_clause = entry["where_clause"] or ""
    if not isinstance(where_clause, str) or where_clause.strip():
        # sqlglot (0.06 s to import) loads only for a table that has a where_clause
        from etl.where_clause import ACCEPTED, where_clause_problem

        if not isinstance(where_clause, str):
            problems.append(f"{at('where_clause')}: expected an SQL boolean expression string; accepted: {ACCEPTED}")
            where_clause = ""
        elif (why := where_clause_problem(where_clause)) is not None:
            problems.append(f"{at('where_clause')}: must be one boolean expression, and {where_clause!r} is not: "
                            f"{why}. Accepted: {ACCEPTED}")

    policy = entry.get("null_watermark_policy", OPTIONAL_FIELDS["null_watermark_policy"])
    if policy not in NULL_WATERMARK_POLICIES:
        problems.append(f"{at('null_watermark_policy')}: {policy!r} is not one of {', '.join(NULL_WATERMARK_POLICIES)}")
    unique_check = entry.get("unique_check", OPTIONAL_FIELDS["unique_check"])
    if unique_check not in UNIQUE_CHECKS:
        problems.append(f"{at('unique_check')}: {unique_check!r} is not one of {', '.join(UNIQUE_CHECKS)} "
                        "(source_key: unique_columns hold a primary or unique key of the source table; "
                        "distinct_count: preflight counts that no two rows share them)")
    landing = _qualified(entry["landing_table"], at("landing_table"), problems)
    store = _qualified(entry["store_table"], at("store_table"), problems)
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
            unique_check=unique_check,
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


@dataclass(frozen=True)
class _Claim:
    """One entry's ``landing_table`` or ``store_table``: who (label ``table`` or ``weblog source``, name,
    file) claims which warehouse table in which field."""

    label: str
    name: str
    path: str
    field: str
    target: QualifiedName

    @property
    def place(self) -> str:
        return _place(self.path, self.name, self.field)


def _claims(label: str, name: object, path: str, entry: object) -> list[_Claim]:
    """The well-formed landing and store names of an entry (malformed ones are reported by its parser)."""
    if not is_identifier(name) or not isinstance(entry, dict):
        return []
    found = []
    for field in ("landing_table", "store_table"):
        target = _qualified(entry.get(field), "", [])
        if target is not None:
            found.append(_Claim(label, name, path, field, target))
    return found


def _target_key(name: QualifiedName) -> str:
    """A warehouse table's name for comparisons: Redshift folds identifiers to lower case, and on
    PostgreSQL two tables whose names differ only in case are a trap of their own."""
    return str(name).lower()


def _check_targets(claims: list[_Claim], problems: list[str]) -> None:
    """Refuse every collision of landing and store tables; appends one message per collision to ``problems``.

    Refused: a warehouse table two MySQL tables claim (as landing or as store table, in any
    combination), a MySQL table whose store table is its own landing table, a weblog table
    that is a MySQL table's (the weblog source's own landing == store is its parser's), and a
    table in a reserved schema (:data:`RESERVED_SCHEMAS`, ``pg_*``). Each message names the
    file, line, entry and field of the later claim and where the earlier one is.
    """
    seen: dict[str, _Claim] = {}
    for claim in sorted(claims, key=lambda c: c.label != "table"):  # the weblog source is checked against the tables
        schema = claim.target.schema.lower()
        head = f"{claim.place}: {claim.label} {claim.name!r}, field {claim.field!r}: {claim.target}"
        if schema in RESERVED_SCHEMAS or schema.startswith("pg_"):
            problems.append(f"{head} is in the reserved schema {claim.target.schema!r} (etl_control holds the "
                            "pipeline's control tables, pres the presentation layer, the others belong to the "
                            "server); choose another schema, e.g. landing or store_<source>")
        first = seen.setdefault(_target_key(claim.target), claim)
        if first is claim:
            continue
        if first.label != "table":
            continue  # the weblog source's landing == its store: its parser says so
        if claim.label != "table":
            problems.append(f"{head} is also the {first.field} of table {first.name!r} ({first.place})")
        elif first.name == claim.name and first.path == claim.path:
            problems.append(f"{head} is also its {first.field}; landing and store must be two tables (the store "
                            "upsert reads landing and writes store)")
        else:
            problems.append(f"{head} is also used by {first.name!r} (its {first.field}, {first.place}); each "
                            "landing and store table belongs to one table")


def _parse_weblog_entry(path: str, name: object, entry: dict) -> tuple[tuple[TableMeta, dict[str, str]] | None, list[str]]:
    """The weblog declaration -> (TableMeta, {column: type}), or None and the problems found."""
    def at(field: str | None = None) -> str:
        return f"{_place(path, name, field)}: weblog source {name!r}" + (f", field {field!r}" if field else "")

    if not is_identifier(name):
        return None, [f"{at()}: the entry name is not an identifier (letters, digits, _)"]
    problems = [f"{at()}: field {key!r} is missing" for key in WEBLOG_FIELDS if key not in entry]
    problems += [f"{_place(path, name, key)}: weblog source {name!r}: unknown field {key!r} "
                 f"(allowed: {', '.join(WEBLOG_FIELDS)})" for key in entry if key not in WEBLOG_FIELDS]
    if problems:
        return None, problems

    types = _weblog_columns(entry["columns"], at("columns"), problems)
    unique = _identifier_list(entry["unique_columns"], at("unique_columns"), problems)
    columns = entry["columns"] if isinstance(entry["columns"], dict) else {}
    for col in unique:
        if col not in columns:
            problems.append(f"{at('unique_columns')}: {col!r} is not in 'columns'")
    if unique and tuple(unique) != WEBLOG_KEY and all(col in columns for col in unique):
        problems.append(f"{at('unique_columns')}: must be [{', '.join(WEBLOG_KEY)}], the key the loader "
                        "makes unique (<file identity>:<line number>); another key would merge or split log lines")
    landing = _qualified(entry["landing_table"], at("landing_table"), problems)
    store = _qualified(entry["store_table"], at("store_table"), problems)
    if landing is not None and store is not None and _target_key(landing) == _target_key(store):
        problems.append(f"{at('store_table')}: {store} is also the landing table")
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


def check_against_source(
    tables: dict[str, TableMeta], source_columns: dict[str, dict[str, object]], database: str
) -> None:
    """Check that every table and column exists in the source.

    ``source_columns`` maps source table name -> {column name -> type info} as read from
    information_schema (see ``etl.source_mysql.read_column_types``). Raises ConfigError
    listing every missing table or column with the file and line that name it
    (:func:`source_problems`).
    """
    problems = source_problems(tables, source_columns, database)
    if problems:
        raise ConfigError("table metadata does not match the source:\n  " + "\n  ".join(problems))


def source_problems(tables: dict[str, TableMeta], source_columns: dict[str, dict[str, object]], database: str) -> list[str]:
    """The missing tables and columns of :func:`check_against_source`, one message each (file, line, table, field)."""
    problems = []
    for meta in tables.values():
        found = source_columns.get(meta.name)
        if found is None:
            problems.append(f"{heading(meta)}: no such table in source database {database!r}")
            continue
        for col in meta.columns:
            if col not in found:
                problems.append(f"{heading(meta, 'columns')}: column {col!r} does not exist in {database}.{meta.name}")
    return problems


def key_problems(meta: TableMeta, keys: dict[str, tuple[str, ...]], database: str) -> list[str]:
    """Whether ``unique_columns`` holds a primary or unique key of the source table (``unique_check: source_key``).

    ``keys`` maps the table's unique indexes, ``{index name: (column, ...)}``, as read by
    ``etl.source_mysql.read_unique_keys``. Accepted when every column of some key is among
    ``unique_columns`` (no two rows can then share them). Returns [] or one message naming
    file, line, table, field, the source's keys and the ``unique_check: distinct_count``
    override; [] for a table with ``unique_check: distinct_count`` (counted instead).
    """
    if meta.unique_check != "source_key":
        return []
    chosen = {c.lower() for c in meta.unique_columns}
    if any(cols and {c.lower() for c in cols} <= chosen for cols in keys.values()):
        return []
    declared = "; ".join(f"{name} ({', '.join(cols)})" for name, cols in keys.items()) or "none"
    return [
        f"{heading(meta, 'unique_columns')}: [{', '.join(meta.unique_columns)}] holds no primary or unique key of "
        f"{database}.{meta.name}, so source rows that share these values would collapse into one store row; the "
        f"source's keys: {declared}. List a key's columns, or, where the source declares none that fits (a view), "
        "add 'unique_check: distinct_count' to the entry: preflight then counts every run that no two rows "
        "(where_clause applied) share unique_columns"
    ]
