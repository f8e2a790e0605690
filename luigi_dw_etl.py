"""The Luigi task graph of the DW ELT (thin: the work is done by the ``etl`` package).

Run everything::

    luigi RunJob --module luigi_dw_etl --local-scheduler

Graph for one execution sequence ``seq`` (one chain per metadata table, so
``--workers N`` runs tables in parallel)::

    ExtractMySQLTable(t, seq) -> LoadLandingTable(t, seq) -> UpsertStoreTable(t, seq) -+
                                                                                         +-> BuildPres(seq) -> RunJob
    ... one chain per table in extract_config/ ..........................................+

Every task's target is a JSON marker under ``output/<seq>/``; delete one to rerun that
step. RunJob computes the execution sequence once (the latest one while it is
incomplete, else the next) and passes it to every task.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

import luigi

from etl import markers, pres, steps, summary
from etl.config import etl_settings  # importing etl.config registers the luigi.cfg sections
from etl.errors import EltError
from etl.logs import ensure_logging
from etl.metadata import load_metadata

log = logging.getLogger("etl.job")


def _marker(sequence: int, name: str) -> luigi.LocalTarget:
    return luigi.LocalTarget(str(Path(etl_settings().output_dir) / str(sequence) / name))


class SequenceTask(luigi.Task):
    """Base of every task: complete only when its marker exists and all it requires is complete.

    Luigi does not look below a complete task, so without this a deleted upstream marker
    would never be noticed. With it, deleting a marker reruns that step and the steps that
    consume its output (make semantics), under the same execution sequence.
    """

    def complete(self):
        return super().complete() and all(dep.complete() for dep in luigi.task.flatten(self.requires()))


class MySQLTableTask(SequenceTask):
    """Base of the per-table tasks: a source table name and the execution sequence.

    A subclass names its ``step`` (the marker's suffix), its ``upstream`` task class and
    implements ``work(ctx, meta)`` returning the marker payload; ``run()`` does the rest.
    """

    table = luigi.Parameter()
    execution_sequence = luigi.IntParameter()
    step = ""
    upstream: type | None = None

    def requires(self):
        if self.upstream is None:
            return []
        return self.upstream(table=self.table, execution_sequence=self.execution_sequence)

    def output(self):
        """``output/<seq>/mysql_<table>.<step>.json``."""
        return _marker(self.execution_sequence, f"mysql_{self.table}.{self.step}.json")

    def run(self):
        ensure_logging()
        meta = load_metadata(etl_settings().extract_config_dir)[self.table]
        payload = self.work(steps.load_context(), meta)
        markers.write_json_atomic(self.output().path, payload)  # only after the work committed

    def work(self, ctx: steps.Context, meta) -> dict:
        """Do this step for one table; returns the marker payload."""
        raise NotImplementedError

    def extract_payload(self) -> dict:
        """The extract marker's payload (column types, row count, window)."""
        return markers.read_json(
            Path(etl_settings().output_dir) / str(self.execution_sequence) / f"mysql_{self.table}.extract.json"
        )


class ExtractMySQLTable(MySQLTableTask):
    """Stream the table's watermark window (or the whole table) into a staging CSV file."""

    step = "extract"

    def work(self, ctx, meta):
        progress = lambda rows: self.set_status_message(f"{rows:,} rows extracted")  # noqa: E731
        return steps.extract_table(ctx, meta, self.execution_sequence, progress=progress)


class LoadLandingTable(MySQLTableTask):
    """COPY the staging file into ``landing.mysql_<table>`` (replacing this sequence's rows)."""

    step = "landing"
    upstream = ExtractMySQLTable

    def work(self, ctx, meta):
        return steps.load_landing(ctx, meta, self.execution_sequence, self.extract_payload())


class UpsertStoreTable(MySQLTableTask):
    """Upsert the landing rows into ``store_mysql.<table>`` and advance the watermark (one transaction)."""

    step = "store"
    upstream = LoadLandingTable

    def work(self, ctx, meta):
        return steps.upsert_store(ctx, meta, self.execution_sequence, self.extract_payload())


class BuildPres(SequenceTask):
    """Run ``sql/pres/*.sql`` in order after every store upsert (step markers under completed/)."""

    execution_sequence = luigi.IntParameter()

    def requires(self):
        tables = load_metadata(etl_settings().extract_config_dir)
        return [UpsertStoreTable(table=t, execution_sequence=self.execution_sequence) for t in tables]

    def output(self):
        return _marker(self.execution_sequence, "pres.json")

    def complete(self):
        """Done when the marker exists and no pres file lost its step marker."""
        settings = etl_settings()
        return super().complete() and all(
            pres.step_marker(settings.completed_dir, self.execution_sequence, "pres", p.name).exists()
            for p in pres.pres_files(settings.sql_dir)
        )

    def run(self):
        ensure_logging()
        settings = etl_settings()
        files = pres.run_pres(
            steps.load_context().warehouse, settings.sql_dir, settings.completed_dir, self.execution_sequence
        )
        markers.write_json_atomic(self.output().path, {"execution_sequence": self.execution_sequence, "files": files})


class RunJob(SequenceTask):
    """The whole ELT for one execution sequence; its ``run()`` closes the run and prints the summary.

    The sequence is computed once per process (see ``etl.markers.resolve_sequence``) after
    the metadata was validated against the source, so nothing runs on bad metadata.
    """

    @cached_property
    def execution_sequence(self) -> int:
        """The sequence this invocation runs (resolved once; raises EltError on bad config)."""
        ensure_logging()
        try:
            ctx = steps.load_context()
            steps.preflight(ctx)
            latest = max(markers.latest_sequence_on_disk(ctx.etl.output_dir), steps.warehouse_latest_sequence(ctx))
        except EltError as exc:
            log.error("RunJob cannot start: %s", exc)
            raise
        sequence = markers.resolve_sequence(
            latest, lambda seq: _marker(seq, "RunJob.json").exists() and BuildPres(execution_sequence=seq).complete()
        )
        log.info("execution sequence %d (latest known %d)", sequence, latest)
        return sequence

    def requires(self):
        return BuildPres(execution_sequence=self.execution_sequence)

    def output(self):
        return _marker(self.execution_sequence, "RunJob.json")

    def run(self):
        ensure_logging()
        settings = etl_settings()
        ctx = steps.load_context()
        tables = list(load_metadata(settings.extract_config_dir))
        pres_payload = markers.read_json(self.requires().output().path)
        result = summary.collect(settings.output_dir, self.execution_sequence, tables, pres_payload)
        steps.close_run(ctx, self.execution_sequence)
        markers.write_json_atomic(self.output().path, result)
        log.info("%s", summary.render(result))
