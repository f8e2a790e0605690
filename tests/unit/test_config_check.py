"""Every configuration value is checked before a settings section is instantiated (``etl.config_check``).

Each test makes its own config files the only ones Luigi reads (the ``cfg`` fixture, conftest.py) and
asserts the exact problem line: section, key, value, the file (or command line flag) that
set it, the accepted form. The real ``luigi`` command refusing a bad value before any
sequence opens: tests/integration/test_config_values.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from luigi.cmdline_parser import CmdlineParser

from etl import config, config_check, quality  # importing quality registers [quality], a checked section
from etl.config_check import MAX_WAIT_SECONDS, MAX_WINDOW_SECONDS, OLDEST_SOURCE_DATETIME
from etl.errors import ConfigError
from tests.support.paths import REPO

SECONDS = (f"an integer number of seconds between 0 and {MAX_WINDOW_SECONDS} (further back than 1000-01-01, "
           "the oldest MySQL DATETIME, a window would start before 0001-01-01, the oldest date Python represents)")


def problems() -> list[str]:
    """The problem lines of check()'s ConfigError (its heading left out)."""
    with pytest.raises(ConfigError) as info:
        config_check.check()
    heading, *lines = str(info.value).split("\n")
    assert heading.endswith("the pipeline cannot use; fix each where it is set (nothing was run):")
    return [line.removeprefix("  ") for line in lines]


# --- one kind of value per test ------------------------------------------------------------------

def test_a_word_where_an_integer_belongs_names_section_key_value_file_and_form(cfg):
    path = cfg("[mysql]\nport = abc\n")
    assert problems() == [f"[mysql] port = 'abc' (set in {path}) must be a TCP port, an integer between 1 and 65535"]


def test_a_boolean_is_true_or_false_only(cfg):
    path = cfg("[dw_etl]\ndetect_hard_deletes = yes\nstream_landing = FALSE\n")  # Luigi ignores the case
    assert problems() == [f"[dw_etl] detect_hard_deletes = 'yes' (set in {path}) must be true or false"]


@pytest.mark.parametrize("section, key, value, accepted", [
    ("mysql", "port", "0", "a TCP port, an integer between 1 and 65535"),
    ("warehouse", "port", "65536", "a TCP port, an integer between 1 and 65535"),
    ("dw_etl", "batch_rows", "0", "an integer >= 1"),
    ("dw_etl", "parallel_copies", "-2", "an integer >= 1"),
    ("dw_etl", "parallel_copy_min_rows", "1.5", "an integer >= 1"),
    ("dw_etl", "landing_keep_sequences", "2147483648", "an integer between 1 and 2147483647"),
    ("dw_etl", "safety_lag_seconds", "-1", SECONDS),
    ("dw_etl", "retry_count", "-1", "an integer between 0 and 1024"),
    ("dw_etl", "retry_delay_seconds", "inf", f"a number of seconds between 0 and {MAX_WAIT_SECONDS}"),
    ("dw_etl", "max_delete_fraction", "1.5", "a number between 0 and 1"),
    ("dw_etl", "max_delete_fraction", "nan", "a number between 0 and 1"),
    ("dw_etl", "output_dir", "", "a folder path (not empty)"),
    ("ipinfo", "timeout_seconds", "0", f"a number of seconds > 0 and at most {MAX_WAIT_SECONDS}"),
    ("quality", "null_keys", "loud", "one of warn, fail, off"),
    ("mysql", "host", "db host", "a name without spaces (not empty)"),
    ("retcode", "task_failed", "300", "an integer between 0 and 255"),
])
def test_a_value_out_of_its_range_is_refused_with_the_range(cfg, section, key, value, accepted):
    path = cfg(f"[{section}]\n{key} = {value}\n")
    assert problems() == [f"[{section}] {key} = {value!r} (set in {path}) must be {accepted}"]


def test_a_look_back_beyond_the_representable_dates_is_refused_before_any_window_is_computed(cfg):
    path = cfg("[dw_etl]\nlookback_seconds = 99999999999\n")  # the OverflowError at extract time, before
    assert problems() == [f"[dw_etl] lookback_seconds = '99999999999' (set in {path}) must be {SECONDS}"]


def test_the_look_back_bound_is_exactly_what_a_window_from_the_oldest_datetime_allows(cfg):
    bound = timedelta(seconds=MAX_WINDOW_SECONDS)
    assert OLDEST_SOURCE_DATETIME - bound == datetime.min
    with pytest.raises(OverflowError):
        OLDEST_SOURCE_DATETIME - bound - timedelta(seconds=1)
    cfg(f"[dw_etl]\nlookback_seconds = {MAX_WINDOW_SECONDS}\nsafety_lag_seconds = {MAX_WINDOW_SECONDS}\n")
    config_check.check()
    cfg(f"[dw_etl]\nlookback_seconds = {MAX_WINDOW_SECONDS + 1}\n", name="later.cfg")
    assert [p.split(" (set")[0] for p in problems()] == [f"[dw_etl] lookback_seconds = '{MAX_WINDOW_SECONDS + 1}'"]


def test_a_flavor_is_one_of_the_dialects(cfg):
    path = cfg("[warehouse]\nflavor = oracle\n")
    assert problems() == [f"[warehouse] flavor = 'oracle' (set in {path}) must be one of postgres, redshift"]


@pytest.mark.parametrize("uri", ["s3://My_Bucket/x", "s3://", "s3:/bucket/x", "s3a://bucket/x", "https://bucket/x",
                                 "file:///tmp/staging", "s3://bucket/x?versionId=1", " "])
def test_a_staging_uri_is_a_local_folder_or_an_s3_bucket(cfg, uri):
    path = cfg(f"[staging]\nuri = {uri}\n")
    shown = repr(uri.strip())  # configparser strips the value
    assert problems() == [f"[staging] uri = {shown} (set in {path}) must be a local folder path, or "
                          "s3://bucket[/prefix] (a valid S3 bucket name)"]


@pytest.mark.parametrize("uri", ["staging", "/var/lib/elt/staging", "./s3", "s3://bucket", "s3://my.bucket-1/elt/x",
                                 "c:staging"])
def test_local_folders_and_s3_prefixes_are_accepted(cfg, uri):
    cfg(f"[staging]\nuri = {uri}\n")
    config_check.check()


@pytest.mark.parametrize("section, key, value, accepted", [
    ("staging", "s3_endpoint_url", "localhost:9000", "empty (AWS), or an http(s)://host[:port] URL"),
    ("staging", "s3_endpoint_url", "http://localhost:99999", "empty (AWS), or an http(s)://host[:port] URL"),
    ("staging", "s3_endpoint_url", "http://minio:9000/bucket", "empty (AWS), or an http(s)://host[:port] URL"),
    ("ipinfo", "api_url", "ipinfo.io", "an http(s)://host[:port][/path] URL"),
    ("ipinfo", "api_url", "https://:443", "an http(s)://host[:port][/path] URL"),
    ("ipinfo", "api_url", "ftp://ipinfo.io", "an http(s)://host[:port][/path] URL"),
])
def test_a_url_must_parse(cfg, section, key, value, accepted):
    path = cfg(f"[{section}]\n{key} = {value}\n")
    assert problems() == [f"[{section}] {key} = {value!r} (set in {path}) must be {accepted}"]


def test_urls_that_parse_are_accepted(cfg):
    cfg("[staging]\ns3_endpoint_url = http://127.0.0.1:9000/\n[ipinfo]\napi_url = https://proxy.example:8443/ipinfo\n")
    config_check.check()


def test_a_backoff_whose_last_wait_no_sleep_takes_is_refused_naming_both_keys(cfg):
    path = cfg("[dw_etl]\nretry_count = 40\nretry_delay_seconds = 2\n")
    assert problems() == [f"[dw_etl] retry_count = 40 (set in {path}) with retry_delay_seconds = 2 (set in {path}): "
                          f"the last wait, retry_delay_seconds * 2^(retry_count - 1), must be at most "
                          f"{MAX_WAIT_SECONDS} seconds; lower either"]
    cfg("[dw_etl]\nretry_count = 1024\nretry_delay_seconds = 0\n", name="no-wait.cfg")
    config_check.check()


# --- where the value came from -------------------------------------------------------------------

def test_the_last_file_that_sets_a_key_is_named(cfg):
    first = cfg("[mysql]\nport = abc\n[warehouse]\nport = 1e3\n", name="first.cfg")
    second = cfg("[mysql]\nport = 70000\n", name="second.cfg")
    assert problems() == [
        f"[mysql] port = '70000' (set in {second}) must be a TCP port, an integer between 1 and 65535",
        f"[warehouse] port = '1e3' (set in {first}) must be a TCP port, an integer between 1 and 65535",
    ]


def test_a_value_given_on_the_command_line_names_the_flag(cfg):
    cfg("[dw_etl]\nlookback_seconds = 300\n")
    args = ["RunJob", "--module", "luigi_dw_etl", "--dw-etl-lookback-seconds", "abc", "--mysql-port=-5",
            "--dw-etl-stream-landing", "no"]
    with CmdlineParser.global_instance(args):
        assert problems() == [
            "[mysql] port = '-5' (set by the command line flag --mysql-port) must be a TCP port, an integer between "
            "1 and 65535",
            f"[dw_etl] lookback_seconds = 'abc' (set by the command line flag --dw-etl-lookback-seconds) must be "
            f"{SECONDS}",
            "[dw_etl] stream_landing = 'no' (set by the command line flag --dw-etl-stream-landing) must be true or false",
        ]
    with CmdlineParser.global_instance(["RunJob", "--module", "luigi_dw_etl", "--dw-etl-lookback-seconds="]):
        config_check.check()  # Luigi takes an empty flag for no value: the file's 300


def test_a_config_path_naming_no_file_is_refused(cfg, monkeypatch, tmp_path):
    cfg("")
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(tmp_path / "prod.cfg"))
    assert problems() == [f"LUIGI_CONFIG_PATH = '{tmp_path / 'prod.cfg'}' is not a file, so none of its settings "
                          "were read (Luigi only warns); correct the variable or create the file"]


# --- unknown keys ---------------------------------------------------------------------------------

def test_a_key_the_section_does_not_declare_is_refused_with_the_likely_one_and_the_keys(cfg):
    path = cfg("[dw_etl]\nlookback_second = 600\n[quality]\nnull_key = warn\n[mysql]\nschema = b2b\n")
    keys = ", ".join(sorted(k for k, _ in config.dw_etl.get_params()))
    assert problems() == [
        f"[mysql] schema (set in {path}) is not a key of [mysql] Nothing reads it, so its setting would be lost; "
        "rename or remove it. The keys of [mysql]: database, host, password, port, user",
        f"[dw_etl] lookback_second (set in {path}) is not a key of [dw_etl]; did you mean lookback_seconds? Nothing "
        f"reads it, so its setting would be lost; rename or remove it. The keys of [dw_etl]: {keys}",
        f"[quality] null_key (set in {path}) is not a key of [quality]; did you mean null_keys? Nothing reads it, so "
        "its setting would be lost; rename or remove it. The keys of [quality]: count_mismatch, duplicate_keys, "
        "null_keys, unknown_members",
    ]


def test_default_section_keys_dash_spelled_keys_and_luigis_own_sections_are_not_unknown(cfg):
    cfg("[DEFAULT]\nroot = /srv/elt\n[dw_etl]\noutput_dir = %(root)s/output\nlookback-seconds = 60\n"
        "[core]\nno_lock = true\n[retcode]\nsomething_new = 3\n[worker]\nkeep_alive = true\n")
    with pytest.warns(DeprecationWarning, match=r"\[dw_etl\] lookback-seconds \(with dashes\)"):  # Luigi's own
        config_check.check()


# --- all problems at once; secrets; the resolvers --------------------------------------------------

def test_every_problem_comes_in_one_error_one_per_line(cfg):
    path = cfg("[mysql]\nport = abc\n[dw_etl]\nlookback_seconds = 99999999999\ndetect_hard_deletes = yes\n"
               "lookback_second = 5\n")
    with pytest.raises(ConfigError) as info:
        config_check.check()
    lines = str(info.value).split("\n")
    assert lines[0] == ("the configuration has 4 values the pipeline cannot use; fix each where it is set "
                        "(nothing was run):")
    assert [line.split(" (set in ")[0] for line in lines[1:]] == [
        "  [mysql] port = 'abc'", "  [dw_etl] lookback_seconds = '99999999999'", "  [dw_etl] detect_hard_deletes = 'yes'",
        "  [dw_etl] lookback_second",
    ]
    assert all(f"(set in {path})" in line for line in lines[1:])


def test_a_value_luigi_cannot_interpolate_says_why_without_showing_a_secret(cfg, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VARIABLE_HERE", raising=False)
    path = cfg("[warehouse]\npassword = Sw0rd%fish\n[ipinfo]\ntoken = ${NO_SUCH_VARIABLE_HERE}Sw0rdfish\n")
    found = problems()
    assert found == [
        f"[warehouse] password (set in {path}) cannot be read: InterpolationSyntaxError: a literal % is written %%, "
        "and %(name)s names another key of the section",
        f"[ipinfo] token (set in {path}) cannot be read: it names the environment variable NO_SUCH_VARIABLE_HERE, "
        "which is not set; set it for the run, or leave ${...} out",
    ]
    assert "Sw0rd" not in "".join(found)


def test_the_settings_resolvers_raise_config_error_not_luigis_value_error(cfg):
    path = cfg("[dw_etl]\nlookback_seconds = abc\n")
    for resolve in (config.etl_settings, config.mysql_settings, config.warehouse_settings, config.weblog_settings):
        with pytest.raises(ConfigError) as info:
            resolve()
        assert f"[dw_etl] lookback_seconds = 'abc' (set in {path}) must be" in str(info.value)


def test_the_project_luigi_cfg_and_the_defaults_pass(cfg):
    cfg((REPO / "luigi.cfg").read_text())
    config_check.check()
    cfg("", name="empty.cfg")
    config_check.check()
    assert config.etl_settings().lookback_seconds == 300


def test_every_declared_key_has_a_rule_and_every_rule_a_key():
    declared = {section: {key for key, _ in cls.get_params()} for section, cls in config_check.pipeline_sections().items()}
    ruled = {section: set(rules) for section, rules in config_check.RULES.items()
             if section not in config_check.FOREIGN_SECTIONS}
    assert declared == ruled
    assert "quality" in declared and all(rule.accepted == f"one of {', '.join(quality.LEVELS)}"
                                         for rule in config_check.RULES["quality"].values())


def test_the_run_log_still_masks_a_password_luigi_cannot_interpolate(cfg):
    from etl import error_report

    cfg("[warehouse]\npassword = Sw0rd%fish\n")
    assert "Sw0rd%fish" in error_report.secret_values()  # as written; before, the log file's set-up raised
