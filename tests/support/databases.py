"""Connections to the local MariaDB/MySQL (127.0.0.1:3306, root) and PostgreSQL (127.0.0.1:5432, root) servers.

Started by scripts/services.sh (scripts/test.sh runs it). For integration tests only: unit tests
never connect (tests/unit/conftest.py refuses it).
"""

from __future__ import annotations

import mysql.connector
import psycopg2

MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
PG = dict(host="127.0.0.1", port=5432, user="root")


def mysql_connect(database: str | None = None):
    """A UTC MySQL connection to ``database`` (autocommit)."""
    conn = mysql.connector.connect(**MYSQL, database=database, autocommit=True, charset="utf8mb4", collation="utf8mb4_unicode_ci")
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    cur.close()
    return conn


def pg_connect(database: str):
    """A UTC PostgreSQL connection to ``database`` (autocommit)."""
    conn = psycopg2.connect(**PG, dbname=database, options="-c timezone=UTC")
    conn.autocommit = True
    return conn
