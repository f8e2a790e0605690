"""Unit tests need no database, no service and no network: every test here runs with
connections refused.

psycopg2.connect, mysql.connector.connect and TCP connects raise AssertionError naming what
was attempted, so a test that reaches a database or a server fails at once (and belongs in
tests/integration) rather than passing only while the local services happen to run. The
database fixtures (``services``, ``project``) live in tests/integration/conftest.py and are
not visible here.
"""

from __future__ import annotations

import socket

import luigi
import mysql.connector
import psycopg2
import pytest


def _refused(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a unit test tried to connect ({what}); tests that need a server belong in tests/integration")
    return refuse


@pytest.fixture(autouse=True)
def no_connections(monkeypatch):
    """Refuse database connections and TCP connects for the duration of each unit test."""
    monkeypatch.setattr(psycopg2, "connect", _refused("psycopg2.connect"))
    monkeypatch.setattr(mysql.connector, "connect", _refused("mysql.connector.connect"))
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            _refused(f"TCP connect to {address}")()
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            _refused(f"TCP connect to {address}")()
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """``write(text, name="luigi.cfg")`` writes a config file (``name`` relative to ``tmp_path``, folders
    created) and adds it, last, to the files Luigi reads (none else: not the repository's luigi.cfg, not
    LUIGI_CONFIG_PATH); returns its path."""
    parser = luigi.configuration.LuigiConfigParser
    monkeypatch.setattr(parser, "_instance", None)
    monkeypatch.setattr(parser, "_config_paths", [])
    monkeypatch.delenv("LUIGI_CONFIG_PATH", raising=False)

    def write(text: str, name: str = "luigi.cfg"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        parser._config_paths.append(str(path))
        parser._instance = None  # read again, with this file
        return path

    return write
