"""The access-log source: parse + enrich new log lines into staging, then landing and store.

Tables, columns and their warehouse types come from the source's declaration
(``extract_config/weblog.yaml``, read by ``etl.metadata.load_weblog_source``):
``landing.weblog_access`` and ``store_weblog.access``, key ``access_key`` =
``<file identity>:<line number>`` (``<file identity>.g<N>:<line number>`` in generation N,
see ``etl.weblog.files``). Per execution sequence, the byte range and generation of every
log file to read is recorded in ``etl_control.weblog_window`` before any line is read (a
resumed run reads exactly the same lines with the same keys); the files' read positions in
``etl_control.weblog_file`` advance in the store upsert transaction, so a line is loaded
once across reruns and rotation. A file truncated or rewritten in place starts a new
generation after its lines the store already holds (``etl.weblog.generations``): a
warning names it, the window records the offset it replaced, the marker counts
``new_generations``; one changed within its fingerprinted first lines is found by its inode
and gets an alias fingerprint (``files.identify``). Rejected lines go to
``<rejects_dir>/<seq>/<log file name>.rejects.jsonl`` and are counted (a record keeps at most
the first 2 KiB of the line and its length, ``parse.reject_record``).

**A file that cannot be read** (``etl.weblog.discovery``: a link outside the log folders, not
a regular file, unreadable, a damaged gzip) is skipped with a warning naming it, the reason
and what to do; the marker lists it (``skipped``, ``skipped_files``) and so does the run
summary, and every other file and table proceeds. Nothing about it is recorded as read, so
every run retries it and, once fixed, its lines load with the keys they would have had:

* found when the files are listed, it gets no window in this sequence (a resumed sequence
  whose window names it leaves that window unread);
* found when its window is read (a gzip damaged past its first 4 KiB, a file made
  unreadable meanwhile), the window stays recorded but unread: its read position is cleared
  (``read_offset`` NULL, also when an earlier attempt of the sequence had read it), and the
  store step advances only read windows (``advance_files``), so the file's position stays
  where it was and the next sequence records a window from there again.

A damaged gzip contributes no line to this run (all or nothing per file): ``files.read_blocks``
decompresses the whole file and checks its CRC before it yields a block (holding up to 16 MiB
of new lines, else decompressing twice), so no line of it is staged, no reject written, no
count taken. That is chosen over staging the lines before the damage and recording that
position: deflate data damaged early can decompress to wrong bytes that only the CRC at the
end reveals, so the lines before the point of failure cannot be trusted. A file that fails
after lines of it were staged (replaced between that check and the read, an I/O error)
stops the extract with an ExtractError naming it: the rerun reads the same window again.
When ``[weblog] paths`` matches no file at all, every extract warns naming the patterns and
the folder relative ones resolve against (``no_match`` in the marker and the summary).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from etl import control, private, warehouse
from etl.config import WeblogSettings
from etl.context import Context
from etl.landing import StreamedLanding
from etl.domain import TableMeta
from etl.metadata import load_weblog_source
from etl.staging_format import header_line
from etl.errors import ExtractError
from etl.weblog import discovery
from etl.weblog import files as logfiles
from etl.weblog.enrich import enrich_block
from etl.weblog.generations import store_lookup, unchanged_prefix
from etl.weblog.parse import parse_block, reject_record

log = logging.getLogger(__name__)

SOURCE = "weblog"


def meta(config_dir: str) -> TableMeta:
    """The access-log source's TableMeta, built from its declaration in ``config_dir``
    (``extract_config/weblog.yaml``, through the cached loader); raises ConfigError when it is
    missing or wrong (see ``etl.metadata.load_weblog_source``)."""
    return load_weblog_source(config_dir)[0]


AVERAGE_LINE_BYTES = 250  # a combined-format line with a browser's user agent


def estimated_lines(settings: WeblogSettings) -> int:
    """A rough size of the access logs (their bytes / AVERAGE_LINE_BYTES), for task priorities. No reads;
    a file that cannot be examined (gone meanwhile, not permitted) counts 0."""
    total = 0
    for path in discovery.matching_files(list(settings.patterns)):
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return total // AVERAGE_LINE_BYTES


def _windows(conn, sequence: int) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT file_id, fingerprint_bytes, path, compressed, start_offset, start_line_no, end_offset, size_bytes, "
            "mtime_ns, generation, replaced_offset, inode, alias_id, alias_bytes FROM etl_control.weblog_window WHERE execution_sequence = %s "
            "ORDER BY recorded_datetime, path",
            [sequence],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _record_windows(conn, sequence: int, logs: list[logfiles.LogFile], table: TableMeta) -> None:
    """Record, for every log with unread lines, the byte range and generation this sequence reads; commit.

    A plain file truncated or rewritten in place (``files.resume_check``) starts a new
    generation after its lines ``table``'s store already holds (``generations.unchanged_prefix``),
    with a warning; the window keeps the offset it replaced. The window records the inode of
    a plain file and the identity's alias fingerprint: a file found by its inode only (changed
    within its fingerprint bytes, ``files.identify``) gets its current head as the alias, so
    its rotated, compressed copy is still recognised.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT file_id, fingerprint_bytes, read_offset, line_no, size_bytes, mtime_ns, generation, "
                    "tail_digest, inode, alias_id, alias_bytes FROM etl_control.weblog_file")
        state = {row[0]: row[1:] for row in cur.fetchall()}
        aliases = {fid: (row[8], row[9]) for fid, row in state.items() if row[8] is not None}
        identified = logfiles.identify(logs, {fid: row[0] for fid, row in state.items()},
                                       inodes={fid: row[7] for fid, row in state.items() if row[7]}, aliases=aliases)
        for file_id, (lf, nbytes) in identified.items():
            start, line_no, generation, replaced = 0, 0, 0, None
            alias = aliases.get(file_id)
            if file_id in state:
                fingerprint, start, line_no, size, mtime, generation, tail = state[file_id][:7]
                generation = generation or 0
                if lf.compressed and (size, mtime) == (lf.size, lf.mtime_ns):
                    continue  # this compressed file was read to its end already
                change = logfiles.resume_check(lf, start, tail)
                if not logfiles.matched_by_fingerprint(lf, fingerprint, file_id, alias):
                    alias = lf.new_identity  # found by inode: its beginning changed in place
                    change = change or "rewritten"
                if change is not None:
                    kept_lines, kept_offset = unchanged_prefix(lf, file_id, _generation_starts(cur, file_id, generation),
                                                               line_no, store_lookup(conn, table.store_table))
                    if kept_lines < line_no:
                        replaced, generation = start, generation + 1
                        log.warning(
                            "log %s (identity %s) was %s in place: %d lines (%d bytes) had been read, it is %d bytes "
                            "now; its first %d lines are unchanged and stay; new generation %d starts at line %d "
                            "(keys %s:<line>), no stored line is overwritten", lf.path, file_id, change, line_no,
                            start, lf.size, kept_lines, generation, kept_lines + 1,
                            logfiles.key_prefix(file_id, generation))
                    start, line_no = kept_offset, kept_lines  # recorded even when nothing is new: a new tail
                elif not lf.compressed and lf.size == start:
                    continue  # nothing new
            cur.execute(
                "INSERT INTO etl_control.weblog_window (execution_sequence, file_id, fingerprint_bytes, path, compressed, "
                "start_offset, start_line_no, end_offset, size_bytes, mtime_ns, generation, replaced_offset, inode, alias_id, "
                "alias_bytes) SELECT %(seq)s, %(id)s, %(fp)s, %(path)s, %(gz)s, %(start)s, %(line)s, %(end)s, %(size)s, "
                "%(mtime)s, %(gen)s, %(replaced)s, %(inode)s, %(alias_id)s, %(alias_bytes)s WHERE NOT EXISTS (SELECT 1 FROM etl_control.weblog_window "
                "WHERE execution_sequence = %(seq)s AND file_id = %(id)s)",
                {"seq": sequence, "id": file_id, "fp": nbytes, "path": lf.path, "gz": lf.compressed, "start": start,
                 "line": line_no, "end": None if lf.compressed else lf.size, "size": lf.size, "mtime": lf.mtime_ns,
                 "gen": generation, "replaced": replaced, "inode": None if lf.compressed else lf.inode,
                 "alias_id": alias[0] if alias else None, "alias_bytes": alias[1] if alias else None},
            )
    conn.commit()


def _generation_starts(cur, file_id: str, generation: int) -> list[int]:
    """The first line number of each generation 0..``generation`` of ``file_id`` (generation 0: line 1),
    from the windows that started them (``etl_control.weblog_window``, kept for every sequence). A
    generation without such a window (not expected) owns no line."""
    cur.execute("SELECT generation, min(start_line_no) FROM etl_control.weblog_window WHERE file_id = %s "
                "AND replaced_offset IS NOT NULL GROUP BY generation", [file_id])
    first = {int(g): int(line) + 1 for g, line in cur.fetchall()}
    never = 1 << 62
    return [1] + [first.get(g, never) for g in range(1, generation + 1)]


def extract_weblog(ctx: Context, settings: WeblogSettings, sequence: int, progress=None) -> dict:
    """Parse and enrich this sequence's new access-log lines into the staging file.

    Returns the marker payload: per file the lines read and rejected and its generation
    (``new_generation`` and ``replaced_offset`` when this sequence started it; ``skipped`` or
    ``missing`` for a window not read), totals (``new_generations``: files truncated or
    rewritten in place; ``skipped_files``), ``skipped`` (``{path, reason, advice}`` per file
    not read, see the module docstring), ``no_match`` (the warning when ``[weblog] paths``
    matches no file, else None), column types, seconds. Rejected lines are written to the
    rejects folder, never dropped silently. A bad log file never raises; ExtractError when
    one fails after lines of it were staged.
    """
    started = time.monotonic()
    table, column_types = load_weblog_source(ctx.etl.extract_config_dir)
    totals = {"lines": 0, "rows": 0, "rejected": 0}
    files = []
    reject_dir = Path(settings.rejects_dir) / str(sequence)
    reject_handles: dict[str, object] = {}
    with warehouse.connection(ctx.warehouse) as conn, warehouse.connection(ctx.warehouse) as cache_conn:
        control.ensure_schema(conn)
        control.open_run(conn, sequence)
        conn.commit()
        from etl.weblog.geo import CountryLookup  # the IP database and user-agent parser load only when logs are read

        countries = CountryLookup(
            settings.ipinfo_token, settings.ipinfo_api_url, settings.ipinfo_timeout_seconds, cache_conn=cache_conn
        )
        windows = _windows(conn, sequence)
        found = _discover(settings)
        discovered, skipped = found.files, {s.path: s for s in found.skipped}
        if not windows:
            _record_windows(conn, sequence, discovered, table)
            windows = _windows(conn, sequence)
        by_id = {fid: lf for fid, (lf, _) in logfiles.identify(
            discovered, {w["file_id"]: w["fingerprint_bytes"] for w in windows},
            inodes={w["file_id"]: w["inode"] for w in windows if w["inode"]},
            aliases={w["file_id"]: (w["alias_id"], w["alias_bytes"]) for w in windows if w["alias_id"]}).items()}
        try:
            with StreamedLanding(ctx, table, sequence, column_types) as streamed:
                with ctx.staging.write_parts(SOURCE, table.name, sequence) as parts:
                    streamed.attach(parts)
                    handle = parts.part(0, header_line(["execution_sequence", *table.columns]))
                    for window in windows:
                        lf = by_id.get(window["file_id"])
                        skip = skipped.get(window["path"]) if lf is None else None
                        stats = None
                        if lf is not None:
                            try:
                                stats = _read_window(handle, sequence, lf, window, countries, reject_dir, reject_handles,
                                                     totals, progress, table.columns)
                            except _Unreadable as exc:
                                skip = skipped[lf.path] = exc.skipped
                                log.warning("weblog: %s", skip.message())
                        if stats is None:
                            files.append(_not_read(conn, sequence, window, skip))
                            continue
                        files.append(stats)
                        with conn.cursor() as cur:
                            cur.execute(
                                "UPDATE etl_control.weblog_window SET read_offset = %s, read_line_no = %s, "
                                "read_tail_digest = %s WHERE execution_sequence = %s AND file_id = %s",
                                [stats["read_offset"], stats["read_line_no"], stats.pop("read_tail_digest"), sequence,
                                 window["file_id"]],
                            )
                    streamed.finish(totals["rows"])
                landing = streamed.commit()  # after the staging file is published
        finally:
            for rejects in reject_handles.values():
                rejects.close()
        # what landing and store take from here (etl_control.table_run), in this extract's commit
        control.record_extract(conn, control.TableRun(sequence, table.name, column_types, totals["rows"], parts.count,
                                                      None, landing))
        conn.commit()
    seconds = round(time.monotonic() - started, 3)
    rate = totals["lines"] / seconds if seconds else 0
    log.info("weblog: %d lines read, %d rows staged, %d rejected, %d distinct IPs, %.2f s (%.0f lines/s)",
             totals["lines"], totals["rows"], totals["rejected"], countries.lookups, seconds, rate)
    if settings.ipinfo_token:
        log.info("weblog: ipinfo looked up %d addresses, %d from its cache, %d fell back to the offline database",
                 countries.ipinfo_lookups, countries.cache_hits, countries.fallbacks)
    if totals["rejected"]:
        log.warning("weblog: %d malformed lines written to %s", totals["rejected"], reject_dir)
    return {
        "table": "weblog_access",
        "execution_sequence": sequence,
        "rows": totals["rows"],
        "lines": totals["lines"],
        "rejected": totals["rejected"],
        "new_generations": sum(1 for w in windows if w["replaced_offset"] is not None),
        "files": files,
        "skipped_files": len(skipped),
        "skipped": [s.as_dict() for s in skipped.values()],
        "no_match": _no_match(settings, found),
        "pg_types": column_types,
        "rejects_dir": str(reject_dir),
        "distinct_ips": countries.lookups,
        "ipinfo": {"looked_up": countries.ipinfo_lookups, "cache_hits": countries.cache_hits,
                   "fallbacks": countries.fallbacks},
        "landing": landing,
        "seconds": seconds,
    }


def _discover(settings: WeblogSettings) -> discovery.Discovery:
    """``discovery.scan`` of ``[weblog] paths``, logging why no log is read (empty paths: info; paths
    matching no file: a warning naming the patterns and the folder they resolve against) and each skipped file."""
    if not settings.patterns:
        log.info("weblog: [weblog] paths is empty; no access logs are read")
        return discovery.Discovery()
    found = discovery.scan(list(settings.patterns))
    if not found.matched:
        log.warning("weblog: %s", _no_match(settings, found))
    for skip in found.skipped:
        log.warning("weblog: %s", skip.message())
    return found


def _no_match(settings: WeblogSettings, found: discovery.Discovery) -> str | None:
    if settings.patterns and not found.matched:
        base, why = settings.patterns_base if settings.patterns_base[0] else (os.getcwd(), "the working directory")
        return discovery.no_match_message(list(settings.configured_patterns or settings.patterns), base, why)
    return None


def _not_read(conn, sequence: int, window: dict, skip: discovery.Skipped | None) -> dict:
    """The marker entry of a window not read: its file skipped (``skip``, warned already) or gone (warned
    here). Clears the window's read position (an earlier attempt of this sequence may have read it, but
    this attempt's staging holds none of its lines), so the store step leaves the file's recorded
    position as it was and a later run reads its lines."""
    if skip is None:
        log.warning("log %s (identity %s) recorded for sequence %d is gone; its unread lines are lost unless it "
                    "comes back", window["path"], window["file_id"], sequence)
    with conn.cursor() as cur:
        cur.execute("UPDATE etl_control.weblog_window SET read_offset = NULL, read_line_no = NULL, "
                    "read_tail_digest = NULL WHERE execution_sequence = %s AND file_id = %s",
                    [sequence, window["file_id"]])
    return {"path": window["path"], "file_id": window["file_id"], "lines": 0, "rejected": 0,
            **({"skipped": True} if skip else {"missing": True})}


class _Unreadable(Exception):
    """A log that failed before any of its lines was staged; ``skipped`` says why and what to do."""

    def __init__(self, skipped: discovery.Skipped):
        super().__init__(skipped.message())
        self.skipped = skipped


def _blocks(lf: logfiles.LogFile, window: dict, tail: logfiles.TailHash):
    """``files.read_blocks`` of the window; a failure before the first block raises _Unreadable (nothing
    of the file staged: it is skipped), one after it (a compressed file replaced between the check
    and the read, an I/O error) ExtractError, since lines of it are staged: the run stops, and the
    rerun reads the same window again (or skips the file when it fails from the start)."""
    blocks = logfiles.read_blocks(lf, window["start_offset"], window["end_offset"], tail=tail)
    try:
        first = next(blocks, None)
    except logfiles.GZIP_ERRORS as exc:
        raise _Unreadable(discovery.corrupt_gzip(lf.path, exc)) from exc
    except OSError as exc:
        raise _Unreadable(discovery.unreadable(lf.path, exc)) from exc
    if first is None:
        return
    yield first
    try:
        yield from blocks
    except (*logfiles.GZIP_ERRORS, OSError) as exc:
        raise ExtractError(
            f"log {lf.path} failed after some of its lines were staged ({type(exc).__name__}: {exc}); the access-log "
            "extract stops so that no part of it is loaded: check the file and run the job again (a file that fails "
            "from its start is skipped with a warning)") from exc


def _read_window(handle, sequence, lf, window, countries, reject_dir, reject_handles, totals, progress, columns) -> dict:
    """Parse, enrich and stage one file's window, a block of lines at a time (polars frames).

    Raises _Unreadable when the file fails before its first line (see :func:`_blocks`)."""
    import polars as pl

    file_id = window["file_id"]
    generation = window["generation"] or 0
    line_no = window["start_line_no"]
    read_offset = window["start_offset"]
    name = os.path.basename(lf.path)
    lines = rejected = 0
    tail = logfiles.TailHash()
    for read_offset, block in _blocks(lf, window, tail):
        texts = block.decode("utf-8", errors="replace").split("\n")
        texts.pop()  # the block ends with a newline
        block_lines = len(texts)
        parsed, rejects = parse_block(pl.Series(texts, dtype=pl.String))
        del texts
        raw_lines = block.split(b"\n") if rejects else []
        for row, _, reason in rejects:
            if name not in reject_handles:
                private.make_dirs(reject_dir)  # rejects hold raw customer lines: owner-only (etl.private)
                reject_handles[name] = private.open_private(reject_dir / f"{name}.rejects.jsonl", "w", encoding="utf-8")
            reject_handles[name].write(json.dumps(
                reject_record(lf.path, line_no + row + 1, reason, raw_lines[row]), ensure_ascii=False) + "\n")
        staged = enrich_block(parsed, sequence, logfiles.key_prefix(file_id, generation), lf.path, line_no, countries,
                              columns)
        staged.write_csv(handle, include_header=False, quote_style="non_numeric", null_value="",
                         datetime_format="%Y-%m-%d %H:%M:%S")
        line_no += block_lines
        lines += block_lines
        rejected += len(rejects)
        totals["lines"] += block_lines
        totals["rows"] += parsed.height
        totals["rejected"] += len(rejects)
        if progress is not None:
            progress(totals["lines"])
    stats = {
        "path": lf.path, "file_id": file_id, "generation": generation, "start_offset": window["start_offset"],
        "read_offset": read_offset, "read_line_no": line_no, "read_tail_digest": tail.digest(), "lines": lines,
        "rejected": rejected,
    }
    if window["replaced_offset"] is not None:
        stats.update(new_generation=True, replaced_offset=window["replaced_offset"])
    return stats


def advance_files(conn, sequence: int) -> None:
    """Move every file's read position to what this sequence read (inside the store transaction)."""
    with conn.cursor() as cur:
        # delete + insert (not ON CONFLICT): the same statements run on PostgreSQL and Redshift;
        # one weblog task at a time writes these rows
        read = "FROM etl_control.weblog_window WHERE execution_sequence = %s AND read_offset IS NOT NULL"
        cur.execute(f"DELETE FROM etl_control.weblog_file WHERE file_id IN (SELECT file_id {read})", [sequence])
        cur.execute(
            "INSERT INTO etl_control.weblog_file (file_id, fingerprint_bytes, path, read_offset, line_no, size_bytes, "
            "mtime_ns, execution_sequence, generation, tail_digest, inode, alias_id, alias_bytes) SELECT file_id, "
            "fingerprint_bytes, path, read_offset, read_line_no, size_bytes, mtime_ns, execution_sequence, generation, "
            f"read_tail_digest, inode, alias_id, alias_bytes {read}",
            [sequence],
        )
