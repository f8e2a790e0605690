"""Relative folders and patterns resolve against the folder of the config file that sets them, and the
project's luigi.cfg is read when Luigi found none (``etl.config.absolute_path``, ``read_project_config``).

Each test runs in a working directory of its own that holds no config file, so a value that
resolved against the working directory would show. The real ``luigi`` command run from another
directory: tests/integration/test_any_directory.py.
"""

from __future__ import annotations

import os

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser

import luigi_dw_etl  # registers RunJob, for the command lines below (imported now, not under a test's cfg)
from etl import config, config_check, error_report
from etl.errors import ConfigError
from etl.weblog import discovery, load


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty working directory, not the folder of any config file."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_each_relative_folder_resolves_against_the_file_that_sets_it_and_a_default_against_the_last_file(
        cfg, elsewhere, tmp_path):
    cfg("[dw_etl]\noutput_dir = out\nsql_dir = ../sql\n[weblog]\nrejects_dir = ./rej\n", name="a/first.cfg")
    cfg("[dw_etl]\nreports_dir = rep/\nextract_config_dir = meta\n[staging]\nuri = stg\n"
        "[weblog]\npaths = logs/access.log*, /var/log/nginx/access.log*\n", name="b/second.cfg")
    etl = config.etl_settings()
    assert (etl.output_dir, etl.sql_dir, etl.reports_dir, etl.extract_config_dir, etl.staging_uri) == (
        f"{tmp_path}/a/out", f"{tmp_path}/sql", f"{tmp_path}/b/rep", f"{tmp_path}/b/meta", f"{tmp_path}/b/stg")
    assert etl.completed_dir == f"{tmp_path}/b/completed"  # not set: the default, beside the last file read
    web = config.weblog_settings()
    assert web.patterns == (f"{tmp_path}/b/logs/access.log*", "/var/log/nginx/access.log*")
    assert web.rejects_dir == f"{tmp_path}/a/rej"
    assert web.configured_patterns == ("logs/access.log*", "/var/log/nginx/access.log*")
    assert web.patterns_base == (f"{tmp_path}/b", f"the folder of {tmp_path}/b/second.cfg, which sets [weblog] paths")
    assert error_report.run_log_dir() == f"{tmp_path}/b/var/log"
    assert os.listdir(elsewhere) == []


def test_a_command_line_flag_resolves_against_the_working_directory(cfg, elsewhere, tmp_path):
    cfg("[dw_etl]\noutput_dir = out\n[weblog]\npaths = logs/*.log\n", name="a/luigi.cfg")
    args = [luigi_dw_etl.RunJob.get_task_family(), "--dw-etl-output-dir", "flag-out", "--weblog-paths", "mine/*.log",
            "--dw-etl-log-dir", "logs"]
    with CmdlineParser.global_instance(args):
        assert config.etl_settings().output_dir == f"{elsewhere}/flag-out"
        assert config.weblog_settings().patterns == (f"{elsewhere}/mine/*.log",)
        assert config_check.base_folder("weblog", "paths") == (
            str(elsewhere), "the working directory, as --weblog-paths is given on the command line")
        assert error_report.run_log_dir() == f"{elsewhere}/logs"
    assert config.etl_settings().output_dir == f"{tmp_path}/a/out"


def test_absolute_home_and_s3_values_are_kept_and_empty_ones_stay_empty(cfg, elsewhere, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg("[dw_etl]\noutput_dir = /srv/dw/output\ncompleted_dir = ~/completed\nextract_config_dir =\n"
        "[staging]\nuri = s3://bucket/prefix\n[weblog]\npaths =\n", name="a/luigi.cfg")
    etl = config.etl_settings()
    assert (etl.output_dir, etl.completed_dir, etl.staging_uri) == (
        "/srv/dw/output", f"{tmp_path}/home/completed", "s3://bucket/prefix")
    assert etl.extract_config_dir == str(config.PROJECT_ROOT / "extract_config")  # empty: the project's own
    assert config.weblog_settings().patterns == ()


def test_a_pattern_keeps_its_wildcards_while_the_folders_characters_are_literal(cfg, elsewhere, tmp_path):
    logs = tmp_path / "proj[1]" / "logs"
    logs.mkdir(parents=True)
    (logs / "access.log").write_bytes(b"a line\n")
    (logs / "access.log.1").write_bytes(b"another line\n")
    cfg("[weblog]\npaths = logs/access.log*\n", name="proj[1]/luigi.cfg")
    [pattern] = config.weblog_settings().patterns
    assert sorted(os.path.basename(f.path) for f in discovery.scan([pattern]).files) == ["access.log", "access.log.1"]


def test_with_no_config_file_a_default_resolves_against_the_working_directory(cfg, elsewhere):
    assert config.etl_settings().output_dir == f"{elsewhere}/output"
    assert config_check.base_folder("dw_etl", "output_dir") == (
        str(elsewhere), "the working directory (no configuration file was read)")


def test_the_no_match_warning_names_the_patterns_as_written_and_the_file_they_resolve_against(cfg, elsewhere, tmp_path):
    path = cfg("[weblog]\npaths = lgs/access.log*\n", name="a/luigi.cfg")
    settings = config.weblog_settings()
    assert load._no_match(settings, discovery.scan(list(settings.patterns))) == (
        f"[weblog] paths = lgs/access.log* matches no file (relative patterns resolve against {tmp_path}/a, the "
        f"folder of {path}, which sets [weblog] paths; folder lgs does not exist): no access logs are read. Fix "
        "the patterns, or set [weblog] paths empty to read no logs")


@pytest.fixture
def project_cfg(cfg, tmp_path, monkeypatch):
    """Luigi's own file list (no file found) and a project luigi.cfg of the test's own as PROJECT_CONFIG."""
    parser = luigi.configuration.LuigiConfigParser
    monkeypatch.setattr(parser, "_config_paths", [str(tmp_path / "etc-luigi.cfg"), "luigi.cfg"])
    path = tmp_path / "proj" / "luigi.cfg"
    path.parent.mkdir()
    path.write_text("[dw_etl]\noutput_dir = output\n[weblog]\npaths = weblogs/access.log*\n")
    monkeypatch.setattr(config, "PROJECT_CONFIG", path)
    return path


def test_with_no_luigi_cfg_found_the_projects_own_is_read_and_its_folders_resolve_beside_it(project_cfg, elsewhere):
    assert config.read_project_config() is True
    assert luigi.configuration.get_config().get("weblog", "paths") == "weblogs/access.log*"
    assert luigi.configuration.LuigiConfigParser._config_paths[-1] == str(project_cfg)
    assert config.etl_settings().output_dir == f"{project_cfg.parent}/output"
    assert config.weblog_settings().patterns == (f"{project_cfg.parent}/weblogs/access.log*",)
    assert config.read_project_config() is False  # once
    assert luigi.configuration.LuigiConfigParser._config_paths.count(str(project_cfg)) == 1


def test_a_luigi_cfg_in_the_working_directory_or_a_config_path_keeps_the_projects_cfg_unread(
        project_cfg, elsewhere, monkeypatch, tmp_path):
    (elsewhere / "luigi.cfg").write_text("[dw_etl]\noutput_dir = here\n")
    assert config.read_project_config() is False
    assert config.etl_settings().output_dir == f"{elsewhere}/here"
    (elsewhere / "luigi.cfg").unlink()
    other = tmp_path / "other.cfg"
    other.write_text("")
    monkeypatch.setenv("LUIGI_CONFIG_PATH", str(other))
    assert config.read_project_config() is False
    assert str(project_cfg) not in luigi.configuration.LuigiConfigParser._config_paths


def test_a_working_directory_removed_is_named_where_a_relative_value_needs_it(cfg, elsewhere):
    elsewhere.rmdir()
    with pytest.raises(ConfigError) as info:
        config.etl_settings()
    assert str(info.value) == (
        "[dw_etl] output_dir is a relative path and resolves against the working directory, which cannot be read "
        "(No such file or directory: removed?); start the job from an existing directory, or give an absolute path")
