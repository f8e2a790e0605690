"""Helpers the tests import as ``tests.support.<module>`` (the fixtures themselves live in conftest.py files).

* ``paths``: the repository the tests run from;
* ``databases``: connections to the local MariaDB/MySQL and PostgreSQL servers;
* ``project``: a temporary project folder with its own databases, and running the job in it;
* ``oracle``: comparing store with source, row by row;
* ``catalog``: what the warehouse's catalog says (a column's type);
* ``sqltext``: the sample table the SQL-generation tests use, and rendering psycopg2 compositions as text;
* ``useragents``: real user agents and the device each is classified as;
* ``luigid``: starting a local luigid central scheduler and calling its API;
* ``fakes``: a connection that records statements and answers with canned rows (unit tests).
"""
