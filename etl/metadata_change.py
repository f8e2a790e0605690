"""Metadata changes: a fingerprint of each table's metadata, and what a change makes the run redo.

A table's **fingerprint** (:func:`fingerprint`) is a canonical JSON form of the metadata
fields that decide which rows its store table holds: ``columns``, ``where_clause``,
``unique_columns``, ``landing_table``, ``store_table``, ``watermark_column`` and
``is_incremental``, with a short hash of it. It is recorded in ``etl_control``:

* with each recorded window (``extract_window``) and extract (``table_run``): the metadata
  the sequence's extract ran under;
* per table, in ``committed_metadata``: the fingerprint the last store commit was
  extracted under (``control.record_committed_metadata``, in the upsert's transaction).

Two rules use it:

1. **At extract** (:func:`changes_since_commit`, called when a new window is computed): when
   the metadata differs from the committed fingerprint, a warning names each changed field
   (old -> new), the table is extracted in full and the changed fields are recorded
   (``table_run.metadata_changes``; the store step reconciles store with them). No
   committed fingerprint (the first run, a warehouse from before fingerprints): nothing to
   compare, the extract records its fingerprint and the store commit makes it the committed one.
2. **On resume** (:func:`redo_changed_tables`, called by ``RunJob`` once the sequence is
   known): a table whose fingerprint recorded for the resumed sequence differs from the
   metadata has that sequence's steps redone: its chain's markers and the downstream ones
   are deleted, then its recorded window, ``table_run`` row and tail fingerprint, so the
   extract computes a new window, which rule 1 makes a whole-table one (a table without a
   committed fingerprint gets the one recorded for the sequence). So a change between
   a failed run and its resume (a new ``landing_table`` after the landing step, say) never
   loses rows.

The access-log source (``extract_config/weblog.yaml``) is out of scope: its declaration has
its own checks (``etl.metadata``) and its extract records no fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from etl import control, warehouse
from etl.context import Context
from etl.domain import TableMeta
from etl.metadata import load_metadata

log = logging.getLogger(__name__)

# The fingerprinted fields, in the order changes are reported.
FIELDS = ("columns", "where_clause", "unique_columns", "landing_table", "store_table", "watermark_column",
          "is_incremental")
HASH_LENGTH = 12  # hex digits of the SHA-256 of the canonical JSON

# Marker names of a table's chain and of the steps downstream of every chain (luigi_dw_etl's
# targets under output/<seq>/; the layers of their step markers under completed/<seq>/).
CHAIN_STEPS = ("extract", "landing", "store")
DOWNSTREAM_MARKERS = ("pres.json", "quality.json", "reports.json", "RunJob.json")
DOWNSTREAM_STEP_LAYERS = ("pres", "reports")


def fingerprint(meta: TableMeta) -> dict:
    """The fingerprint of ``meta``: ``{"fields": {field: value}, "hash": str}``.

    ``fields`` holds the :data:`FIELDS` as JSON values: ``columns`` and ``unique_columns`` as
    sorted lists (their order changes nothing in store), ``where_clause`` stripped of
    surrounding white space, ``landing_table`` and ``store_table`` as ``schema.table`` text,
    ``watermark_column`` (None for a full table) and ``is_incremental`` as given. ``hash`` is
    the first :data:`HASH_LENGTH` hex digits of the SHA-256 of the canonical JSON
    (:func:`canonical_json`) of ``fields``.
    """
    fields = {
        "columns": sorted(meta.columns),
        "where_clause": meta.where_clause.strip(),
        "unique_columns": sorted(meta.unique_columns),
        "landing_table": str(meta.landing_table),
        "store_table": str(meta.store_table),
        "watermark_column": meta.watermark_column,
        "is_incremental": bool(meta.is_incremental),
    }
    return {"fields": fields, "hash": hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:HASH_LENGTH]}


def canonical_json(fields: dict) -> str:
    """``fields`` as canonical JSON text: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def changed_fields(old: dict, new: dict) -> list[str]:
    """The names of the :data:`FIELDS` whose values differ between fingerprints ``old`` and ``new``
    (as :func:`fingerprint` returns them), in :data:`FIELDS` order; [] when none.

    Only fields present in both are compared, so a field added to the fingerprint in a later
    release does not count as a change of every table.
    """
    before, after = old.get("fields", {}), new.get("fields", {})
    return [f for f in FIELDS if f in before and f in after and before[f] != after[f]]


def describe_changes(old: dict, new: dict) -> str:
    """``field: old -> new`` for each changed field (values as JSON), joined by ``; ``."""
    before, after = old["fields"], new["fields"]
    return "; ".join(f"{f}: {json.dumps(before[f])} -> {json.dumps(after[f])}" for f in changed_fields(old, new))


def changes_since_commit(conn, meta: TableMeta) -> list[str]:
    """The fields of ``meta`` changed since its last store commit (``etl_control.committed_metadata``),
    each logged in one warning (``field: old -> new``) that says the table is extracted in full;
    [] when nothing changed or no committed fingerprint exists yet.

    ``conn``: an open warehouse connection (read only, no commit).
    """
    committed = control.committed_metadata(conn, meta.name)
    if committed is None:
        return []
    old, sequence = committed
    new = fingerprint(meta)
    changes = changed_fields(old, new)
    if changes:
        log.warning("table %s: metadata changed since store last committed it (sequence %d): %s; "
                    "extracting the whole table", meta.name, sequence, describe_changes(old, new))
    return changes


def chain_markers(output_dir: str | Path, sequence: int, table: str) -> list[Path]:
    """The marker files of ``table``'s chain in ``sequence``: ``output/<seq>/mysql_<table>.<step>.json``."""
    return [Path(output_dir) / str(sequence) / f"mysql_{table}.{step}.json" for step in CHAIN_STEPS]


def downstream_markers(output_dir: str | Path, completed_dir: str | Path, sequence: int) -> list[Path]:
    """The markers of ``sequence``'s steps after the store steps that exist: ``pres.json``,
    ``quality.json``, ``reports.json``, ``RunJob.json`` and the pres and report step markers
    under ``completed/<seq>/``."""
    found = [Path(output_dir) / str(sequence) / name for name in DOWNSTREAM_MARKERS]
    for layer in DOWNSTREAM_STEP_LAYERS:
        folder = Path(completed_dir) / str(sequence) / layer  # etl.markers.step_marker's folders
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_file())
    return [p for p in found if p.exists()]


def redo_changed_tables(ctx: Context, sequence: int) -> list[str]:
    """Make ``sequence`` redo the steps of every table whose metadata changed since the sequence
    recorded its fingerprint (a resumed run); returns the tables redone, sorted.

    A table is redone when any fingerprint recorded for it in ``sequence`` (its window's, its
    extract's) differs from its metadata in ``ctx.etl.extract_config_dir``: one warning names
    what changed and what is redone; its chain's markers and the downstream markers of the
    sequence (:func:`downstream_markers`) are deleted, then its window, ``table_run`` row and
    tail fingerprint (``control.forget_table_sequence``, committed). A table without a committed
    fingerprint (its last commit before fingerprints existed, or none yet) gets the recorded one
    as committed, so its new extract reads the whole table too. Markers go first: a crash
    in between leaves the records, and the next run redoes the table again. Tables without a
    recorded fingerprint (nothing ran yet in ``sequence``, or it ran before fingerprints
    existed) are left alone. Creates the ``etl_control`` schema when missing (no worker runs
    yet). Raises WarehouseError when the warehouse is unreachable; OSError when a marker
    cannot be deleted.
    """
    tables = load_metadata(ctx.etl.extract_config_dir)
    with warehouse.connection(ctx.warehouse) as conn:
        control.ensure_schema(conn)
        recorded = control.sequence_fingerprints(conn, sequence)
        conn.commit()
        redone = []
        for name in sorted(set(recorded) & set(tables)):
            current = fingerprint(tables[name])
            old = next((fp for fp in recorded[name] if changed_fields(fp, current)), None)
            if old is None:
                continue
            stale = [p for p in [*chain_markers(ctx.etl.output_dir, sequence, name),
                                 *downstream_markers(ctx.etl.output_dir, ctx.etl.completed_dir, sequence)] if p.exists()]
            log.warning("table %s: metadata changed since sequence %d extracted it (%s); redoing its extract, "
                        "landing and store of sequence %d and the steps after them (%d markers deleted)",
                        name, sequence, describe_changes(old, current), sequence, len(stale))
            for path in stale:
                path.unlink(missing_ok=True)
            control.forget_table_sequence(conn, sequence, name)
            if control.committed_metadata(conn, name) is None:  # so the new extract reads the whole table
                control.assume_committed_metadata(conn, name, old, sequence)
            conn.commit()
            redone.append(name)
    return redone
