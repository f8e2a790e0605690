"""The run summary: per table rows extracted, loaded, inserted and updated, and seconds per task.

Built from the JSON markers a sequence left under ``output/<seq>/`` (each task writes what
it did into its marker), so it is complete even when the run was resumed across several
processes.
"""

from __future__ import annotations

from pathlib import Path

from etl.markers import read_json
from etl.staging_format import altered_message
from etl.weblog.discovery import Skipped


def collect(output_dir: str | Path, sequence: int, tables: list[str], pres: dict | None, weblog: bool = False,
            quality: dict | None = None) -> dict:
    """Gather the sequence's markers into ``{"tables": [...], "pres": [...], "totals": {...}}``.

    ``tables`` are the MySQL tables; ``weblog`` adds the access-log chain (row
    ``weblog_access``, with ``lines`` read and ``rejected`` lines). Per table,
    ``altered_rows`` counts the rows stored with a value changed so that PostgreSQL could
    hold it (a NUL character removed), ``altered_values`` ``{column: rows}`` and
    ``altered_keys`` the first such rows' keys; ``warnings`` holds one line per table with
    altered rows and one for access logs that started a new generation (``new_generations``:
    truncated or rewritten in place). ``deleted`` counts the rows the store step marked as
    tombstones. The access-log row lists the log files its extract ``skipped`` (``{path,
    reason, advice}``; one warning each) and ``no_match``, the warning that ``[weblog] paths``
    matched no file (a warning too). Missing markers count as nothing done.
    """
    folder = Path(output_dir) / str(sequence)
    rows = []
    prefixes = [(t, f"mysql_{t}") for t in tables] + ([("weblog_access", "weblog_access")] if weblog else [])
    for table, prefix in prefixes:
        extract = read_json(folder / f"{prefix}.extract.json")
        landing = read_json(folder / f"{prefix}.landing.json")
        store = read_json(folder / f"{prefix}.store.json")
        rows.append(
            {
                "table": table,
                "lines": extract.get("lines"),
                "rejected": extract.get("rejected"),
                "window_start": extract.get("window_start"),
                "window_end": extract.get("window_end"),
                "extracted": extract.get("rows"),
                "landed": landing.get("rows"),
                "inserted": store.get("inserted"),
                "updated": store.get("updated"),
                "deleted": store.get("deleted"),
                "invalid_dates": sum((extract.get("invalid_dates") or {}).values()),
                "altered_rows": extract.get("altered_rows"),
                "altered_values": extract.get("altered_values") or {},
                "altered_keys": extract.get("altered_keys") or [],
                "null_key_rows": store.get("null_key_rows"),
                "null_watermark_rows": extract.get("null_watermark_rows"),
                "new_generations": extract.get("new_generations"),
                "skipped": extract.get("skipped") or [],
                "no_match": extract.get("no_match"),
                "extract_s": extract.get("seconds"),
                "landing_s": landing.get("seconds"),
                "store_s": store.get("seconds"),
            }
        )
    totals = {
        key: sum(r[key] or 0 for r in rows)
        for key in ("extracted", "landed", "inserted", "updated", "deleted", "null_key_rows", "invalid_dates",
                    "altered_rows", "rejected")
    }
    return {
        "execution_sequence": sequence,
        "tables": rows,
        "pres": (pres or {}).get("files", []),
        "quality": [c for c in (quality or {}).get("checks", []) if c["problem_count"]],
        "totals": totals,
        "warnings": [
            *("altered values: " + altered_message(r["table"], r["altered_rows"], r["altered_values"], r["altered_keys"])
              for r in rows if r["altered_rows"]),
            *(f"access logs: {r['new_generations']} log file(s) truncated or rewritten in place started a new "
              "generation (their stored lines are kept; see the extract's warning)" for r in rows if r["new_generations"]),
            *(f"access logs: {r['no_match']}" for r in rows if r["no_match"]),
            *(f"access logs: {Skipped(**s).message()}" for r in rows for s in r["skipped"]),
        ],
    }


def render(summary: dict) -> str:
    """Render a collected summary (see :func:`collect`) as plain text for the log / terminal: the
    per-table table, one ``WARNING`` line per warning (altered values, new log generations, skipped
    log files, paths matching no log), then the pres files and data-quality findings. Returns the
    text (no trailing newline)."""
    from tabulate import tabulate  # imported only to print (keeps every task process's start-up light)

    headers = ["table", "extracted", "landed", "inserted", "updated", "tombstoned", "null keys", "bad dates",
               "altered", "rejected", "extract s", "landing s", "store s"]
    counts = ("extracted", "landed", "inserted", "updated", "deleted", "null_key_rows", "invalid_dates",
              "altered_rows", "rejected")
    body = [[r["table"], *(r[k] for k in counts), r["extract_s"], r["landing_s"], r["store_s"]] for r in summary["tables"]]
    t = summary["totals"]
    body.append(["TOTAL", *(t[k] for k in counts), "", "", ""])
    text = f"Run summary, execution sequence {summary['execution_sequence']}\n"
    text += tabulate(body, headers=headers, tablefmt="simple", intfmt=",")
    for warning in summary.get("warnings", []):
        text += "\nWARNING " + warning
    if summary.get("retention"):  # etl.retention.after_run: what the completed run removed
        text += "\n" + summary["retention"]["text"]
        text += "".join("\nWARNING retention: " + p for p in summary["retention"]["problems"])
    if summary["pres"]:
        text += "\n\n" + tabulate(
            [[p["file"], p["seconds"], "skipped (marker present)" if p["skipped"] else "ran"] for p in summary["pres"]],
            headers=["pres file", "seconds", "status"],
            tablefmt="simple",
        )
    if summary.get("quality"):
        text += "\n\n" + tabulate(
            [[c["check_name"], c["table_name"], c["problem_count"], c["status"], c.get("details", "")]
             for c in summary["quality"]],
            headers=["quality check", "table", "problems", "status", "details"],
            tablefmt="simple",
        )
    return text
