"""The Luigi task graph of the DW ELT (thin: the work is done by the ``etl`` package).

Run everything::

    luigi RunJob --module luigi_dw_etl --local-scheduler

Every luigi.cfg setting of the pipeline is also a flag, ``[dw_etl] keep_runs`` as
``--dw-etl-keep-runs``; ``luigi RunJob --module luigi_dw_etl --help`` lists them all.

Graph for one execution sequence ``seq`` (one chain per metadata table, so
``--workers N`` runs tables in parallel)::

    ExtractMySQLTable(t, seq) -> LoadLandingTable(t, seq) -> UpsertStoreTable(t, seq) -+
    ... one chain per table in extract_config/ ..........................................+-> BuildPres -> CheckQuality -> BuildReports -> RunJob
    ExtractWeblog(seq) -> LoadWeblogLanding(seq) -> UpsertWeblogStore(seq) ---------------+

Every task's target is a JSON marker under ``output/<seq>/``; delete one to rerun that
step. RunJob computes the execution sequence once (the latest one while it is
incomplete, else the next) and passes it to every task.
"""

from __future__ import annotations

import logging
from functools import cached_property, lru_cache
from pathlib import Path

import luigi
from luigi.cmdline_parser import CmdlineParser

from etl import (error_report, markers, metadata_change, pres, private, quality, reports, retention, runlock, shutdown,
                 summary)
from etl.config import (apply_retcode_defaults, etl_settings, read_project_config,  # registers the cfg sections
                        weblog_settings)
from etl.context import (Context, close_run, estimated_rows, load_context, preflight, preflight_environment,
                         state_folders, warehouse_latest_sequence)
from etl.errors import DeleteGuardError, EltError
from etl.extract import extract_table
from etl.landing import load_landing
from etl.logs import ensure_logging
from etl.metadata import load_metadata
from etl.retries import with_retries
from etl.staging import LocalStaging
from etl.store import upsert_store
from etl.weblog import load as weblog_load

log = logging.getLogger("etl.job")

# The one thing done at import: Luigi reads [core] and [retcode] right after importing this module, so
# the project's luigi.cfg is read when Luigi found none (started from another directory: cron, systemd;
# the only I/O, that one file) and a config without [retcode] still gets non-zero exit codes for failures.
read_project_config()
apply_retcode_defaults()


def _marker(sequence: int, name: str) -> luigi.LocalTarget:
    return luigi.LocalTarget(str(Path(etl_settings().output_dir) / str(sequence) / name))


def _group_readable() -> bool:
    """``[dw_etl] group_readable``; owner-only while the settings cannot be read (RunJob reports why)."""
    try:
        return etl_settings().group_readable
    except EltError:
        return False


def _state_folders(ctx: Context) -> list[str]:
    """The folders the job keeps its files in: output, completed, reports, rejects and a local staging folder."""
    folders = [folder for _, folder in state_folders(ctx, weblog_settings().rejects_dir)]
    if isinstance(ctx.staging, LocalStaging):
        folders.append(str(ctx.staging.root))
    return folders


@lru_cache(maxsize=None)
def _chain_sizes(sequence: int) -> dict[str, int]:
    """Estimated rows per chain (marker prefix -> rows), read once per process for the task priorities."""
    ctx = load_context()
    sizes = {f"mysql_{t}": n for t, n in estimated_rows(ctx, load_metadata(ctx.etl.extract_config_dir)).items()}
    sizes["weblog_access"] = weblog_load.estimated_lines(weblog_settings())
    return sizes


class SequenceTask(luigi.Task):
    """Base of every task: complete only when its marker exists and all it requires is complete.

    Luigi does not look below a complete task, so without this a deleted upstream marker
    would never be noticed. With it, deleting a marker reruns that step and the steps that
    consume its output (make semantics), under the same execution sequence.

    Built by the ``luigi`` command (any task, the root or one run alone), it sets the process's
    umask (``etl.private.apply``) before anything is written or any worker is forked.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if CmdlineParser.get_instance() is not None:
            private.apply(_group_readable())

    def complete(self):
        return super().complete() and all(dep.complete() for dep in luigi.task.flatten(self.requires()))

    def retried(self, work):
        """Run ``work()`` with retries on transient faults (``[dw_etl] retry_count``, ``retry_delay_seconds``)."""
        settings = etl_settings()
        return with_retries(str(self), work, settings.retry_count, settings.retry_delay_seconds)


class ChainTask(SequenceTask):
    """One step of a source's chain (extract -> landing -> store) for one execution sequence.

    A subclass names its ``step`` (the marker's suffix), its ``upstream`` task class and
    implements ``work(ctx)`` returning the marker payload; ``run()`` does the rest.
    """

    execution_sequence = luigi.IntParameter()
    step = ""
    upstream: type | None = None

    def upstream_params(self) -> dict:
        """Parameters that identify this chain (the upstream task gets the same)."""
        return {"execution_sequence": self.execution_sequence}

    def marker_prefix(self) -> str:
        """File-name prefix of this chain's markers, e.g. ``mysql_orders``."""
        raise NotImplementedError

    def requires(self):
        return [] if self.upstream is None else self.upstream(**self.upstream_params())

    def output(self):
        """``output/<seq>/<prefix>.<step>.json``."""
        return _marker(self.execution_sequence, f"{self.marker_prefix()}.{self.step}.json")

    def run(self):
        ensure_logging()
        payload = self.retried(lambda: self.work(load_context()))
        markers.write_json_atomic(self.output().path, payload)  # only after the work committed

    def work(self, ctx: Context) -> dict:
        """Do this step; returns the marker payload."""
        raise NotImplementedError

    def forget_extract(self) -> None:
        """Delete the chain's extract marker, so the next run extracts again (same recorded window).

        Called by the landing step before it fails on staged data that cannot be loaded
        (``etl.landing.load_landing``), and by the store step when the delete guard refuses what
        the extract saw. Raises OSError only if the file exists and cannot be removed.
        """
        path = Path(_marker(self.execution_sequence, f"{self.marker_prefix()}.extract.json").path)
        path.unlink(missing_ok=True)
        log.warning("%s: extract marker %s deleted; the next run extracts again", self, path)

    def progress(self, rows: int) -> None:
        """Show progress in the scheduler's UI."""
        self.set_status_message(f"{rows:,} rows extracted")


class MySQLTableTask(ChainTask):
    """Base of the per-table tasks: a source table name and the execution sequence."""

    table = luigi.Parameter()
    execution_sequence = luigi.IntParameter()  # declared again so the UI shows table first

    def upstream_params(self):
        return {"table": self.table, "execution_sequence": self.execution_sequence}

    def marker_prefix(self):
        return f"mysql_{self.table}"

    def meta(self):
        """This table's validated metadata."""
        return load_metadata(etl_settings().extract_config_dir)[self.table]


class ExtractMySQLTable(MySQLTableTask):
    """Stream the table's watermark window (or the whole table) into a staging CSV file."""

    step = "extract"

    def work(self, ctx):
        return extract_table(ctx, self.meta(), self.execution_sequence, progress=self.progress)


class LoadLandingTable(MySQLTableTask):
    """COPY the staging file into ``landing.mysql_<table>`` (replacing this sequence's rows)."""

    step = "landing"
    upstream = ExtractMySQLTable

    def work(self, ctx):
        return load_landing(ctx, self.meta(), self.execution_sequence, forget_extract=self.forget_extract)


class UpsertStoreTable(MySQLTableTask):
    """Upsert the landing rows into ``store_mysql.<table>`` and advance the watermark (one transaction)."""

    step = "store"
    upstream = LoadLandingTable

    @property
    def priority(self):
        """The table's estimated rows: the scheduler starts the largest chains first (its dependencies inherit it)."""
        return _chain_sizes(self.execution_sequence).get(self.marker_prefix(), 0)

    def work(self, ctx):
        try:
            return upsert_store(ctx, self.meta(), self.execution_sequence)
        except DeleteGuardError:
            # the extract saw the source without the rows (a truncated table, a mistaken where_clause): once the
            # operator restores them, the next run must read the window again, or changes made before the
            # mistake and staged without those rows would be passed by the watermark
            self.forget_extract()
            raise


class WeblogTask(ChainTask):
    """Base of the access-log chain (one per sequence)."""

    def marker_prefix(self):
        return "weblog_access"

    def meta(self):
        """The access-log source's metadata, from its declaration (``extract_config/weblog.yaml``)."""
        return weblog_load.meta(etl_settings().extract_config_dir)


class ExtractWeblog(WeblogTask):
    """Parse and enrich the new access-log lines into a staging CSV file (rejects to the rejects folder)."""

    step = "extract"

    def work(self, ctx):
        return weblog_load.extract_weblog(ctx, weblog_settings(), self.execution_sequence, progress=self.progress)


class LoadWeblogLanding(WeblogTask):
    """COPY the weblog staging file into ``landing.weblog_access``."""

    step = "landing"
    upstream = ExtractWeblog

    def work(self, ctx):
        return load_landing(
            ctx, self.meta(), self.execution_sequence, source=weblog_load.SOURCE,
            forget_extract=self.forget_extract,
        )


class UpsertWeblogStore(WeblogTask):
    """Upsert into ``store_weblog.access`` and advance the log files' read positions (one transaction)."""

    step = "store"
    upstream = LoadWeblogLanding

    @property
    def priority(self):
        """The access logs' estimated lines (see UpsertStoreTable.priority)."""
        return _chain_sizes(self.execution_sequence).get(self.marker_prefix(), 0)

    def work(self, ctx):
        return upsert_store(
            ctx, self.meta(), self.execution_sequence, from_mysql=False,
            in_transaction=lambda conn: weblog_load.advance_files(conn, self.execution_sequence),
        )


class BuildPres(SequenceTask):
    """Run ``sql/pres/*.sql`` in order after every store upsert (step markers under completed/)."""

    execution_sequence = luigi.IntParameter()

    def requires(self):
        tables = load_metadata(etl_settings().extract_config_dir)
        required = [UpsertStoreTable(table=t, execution_sequence=self.execution_sequence) for t in tables]
        required.append(UpsertWeblogStore(execution_sequence=self.execution_sequence))
        return required

    def output(self):
        return _marker(self.execution_sequence, "pres.json")

    def complete(self):
        """Done when the marker exists and no pres file lost its step marker."""
        settings = etl_settings()
        return super().complete() and all(
            markers.step_marker(settings.completed_dir, self.execution_sequence, "pres", p.name).exists()
            for p in pres.pres_files(settings.sql_dir)
        )

    def run(self):
        ensure_logging()
        settings = etl_settings()
        tables = load_metadata(settings.extract_config_dir)
        weblog = weblog_load.meta(settings.extract_config_dir)
        schemas = sorted({m.store_table.schema for m in [*tables.values(), weblog]} | {"pres"})
        files = self.retried(lambda: pres.run_pres(
            load_context().warehouse, settings.sql_dir, settings.completed_dir, self.execution_sequence, schemas,
            connections=settings.pres_connections,
        ))
        markers.write_json_atomic(self.output().path, {"execution_sequence": self.execution_sequence, "files": files})


class CheckQuality(SequenceTask):
    """Data-quality checks after store and pres (``etl.quality``); fails the run on a ``fail``-level finding."""

    execution_sequence = luigi.IntParameter()

    def requires(self):
        return BuildPres(execution_sequence=self.execution_sequence)

    def output(self):
        return _marker(self.execution_sequence, "quality.json")

    def run(self):
        ensure_logging()
        tables = load_metadata(etl_settings().extract_config_dir)
        results = self.retried(lambda: quality.run_checks(load_context(), tables, self.execution_sequence))
        markers.write_json_atomic(self.output().path, quality.payload(results, self.execution_sequence))


class BuildReports(SequenceTask):
    """Run ``sql/reports/*.sql``; write CSV, a chart per report and dashboard.html under reports_dir/<seq>/."""

    execution_sequence = luigi.IntParameter()

    def requires(self):
        return CheckQuality(execution_sequence=self.execution_sequence)

    def output(self):
        return _marker(self.execution_sequence, "reports.json")

    def complete(self):
        """Done when the marker exists and no report lost its step marker."""
        settings = etl_settings()
        return super().complete() and all(
            markers.step_marker(settings.completed_dir, self.execution_sequence, "reports", p.stem).exists()
            for p in reports.report_files(settings.sql_dir)
        )

    def run(self):
        ensure_logging()
        settings = etl_settings()
        payload = self.retried(lambda: reports.build_for_sequence(
            load_context().warehouse, settings.sql_dir, settings.reports_dir, settings.completed_dir,
            self.execution_sequence,
        ))
        markers.write_json_atomic(self.output().path, payload)


class RunJob(SequenceTask):
    """The whole ELT for one execution sequence; its ``run()`` closes the run and prints the summary.

    The sequence is computed once per process (see ``etl.markers.resolve_sequence``) after
    the metadata was validated against the source, so nothing runs on bad metadata.
    Started as the command line's task, it first takes the warehouse run lock (``etl.runlock``)
    and installs the SIGTERM and worker-process handlers (``etl.shutdown``).
    """

    _run_lock_error: EltError | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The hook: the `luigi` command instantiates its root task in luigi.interface._run
        # (CmdlineParser.get_task_obj), in the main process, before Luigi's own pid lock, before
        # scheduling and so before any complete() resolves the sequence; run_with_retcodes maps
        # PidLockAlreadyTakenExit raised out of _run to [retcode] already_running. Raised later,
        # inside complete() or requires(), an error would become a scheduling error (or, taken
        # in parallel_scheduling's pool, the lock would be held by the wrong process). RunJob()
        # built in code (tests) takes no lock.
        cmdline = CmdlineParser.get_instance()
        if cmdline is not None and cmdline.known_args.root_task == self.task_family:
            # failures: one line each, repeated last; tracebacks of expected ones to the run's log file
            error_report.install(f"dw_etl run log: {runlock.command_line()}", ensure_logging())
            self._take_run_lock()

    def _take_run_lock(self) -> None:
        """Hold the warehouse run lock for this process's life, or exit with already_running naming the holder.

        Other errors (a wrong [warehouse] value, the warehouse unreachable) are kept and raised by
        ``execution_sequence`` after the preflight: a scheduling error, as the preflight's.
        """
        ensure_logging()
        core = luigi.interface.core()
        try:
            identity = runlock.scheduler_identity(core.local_scheduler, core.scheduler_url, core.scheduler_host,
                                                  core.scheduler_port)
            runlock.hold(load_context().warehouse, identity, runlock.command_line())
        except runlock.RunLockTaken as exc:
            error_report.add_failure(f"RunJob cannot start: {exc}")  # printed at exit, the run's only line about it
            raise luigi.interface.PidLockAlreadyTakenExit() from None
        except EltError as exc:
            self._run_lock_error = exc
            return
        shutdown.install(lambda: f"execution sequence {self.__dict__['execution_sequence']}"
                         if "execution_sequence" in self.__dict__ else None, on_exit=runlock.release_held)

    @cached_property
    def execution_sequence(self) -> int:
        """The sequence this invocation runs (resolved once; raises EltError on bad config)."""
        ensure_logging()
        # an EltError here is a scheduling error: Luigi logs it, etl.error_report shows its message once and last
        ctx = load_context()
        quality.levels()  # a wrong [quality] level stops the run before any task
        weblog_meta = weblog_load.meta(ctx.etl.extract_config_dir)  # so does a missing or wrong access-log declaration
        tables = preflight(ctx)
        # folders and staging writable (created private when missing), the warehouse role's privileges
        preflight_environment(ctx, weblog_settings().rejects_dir, [*tables.values(), weblog_meta])
        private.tighten_folders(_state_folders(ctx))  # folders an earlier umask left open to others
        if self._run_lock_error is not None:  # after the settings' own checks, which say more
            raise self._run_lock_error
        latest = max(markers.latest_sequence_on_disk(ctx.etl.output_dir), warehouse_latest_sequence(ctx))
        sequence = markers.resolve_sequence(
            latest, lambda seq: _marker(seq, "RunJob.json").exists() and BuildReports(execution_sequence=seq).complete()
        )
        log.info("execution sequence %d (latest known %d)", sequence, latest)
        metadata_change.redo_changed_tables(ctx, sequence)  # a resumed sequence redoes tables whose metadata changed
        return sequence

    def requires(self):
        return BuildReports(execution_sequence=self.execution_sequence)

    def output(self):
        return _marker(self.execution_sequence, "RunJob.json")

    def run(self):
        ensure_logging()
        settings = etl_settings()
        ctx = load_context()
        tables = list(load_metadata(settings.extract_config_dir))
        pres_payload = markers.read_json(_marker(self.execution_sequence, "pres.json").path)
        result = summary.collect(
            settings.output_dir, self.execution_sequence, tables, pres_payload, weblog=True,
            quality=markers.read_json(_marker(self.execution_sequence, "quality.json").path),
        )
        self.retried(lambda: close_run(ctx, self.execution_sequence))
        # reports/latest -> this run, then old run folders and staging go (etl.retention: never this sequence's)
        result["retention"] = retention.after_run(ctx, weblog_settings().rejects_dir, self.execution_sequence)
        markers.write_json_atomic(self.output().path, result)
        log.info("%s", summary.render(result))
