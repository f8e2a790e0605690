"""Which pres files wait for which (etl.pres.file_dependencies): files sharing no pres table run together."""

import json
from pathlib import Path

from etl import pres

ROOT = Path(__file__).resolve().parents[2]


def waits_of(files: dict[str, str]) -> dict[str, set[str]]:
    return pres.file_dependencies({name: (Path(name), text) for name, text in files.items()})


def test_the_shipped_files_wait_only_for_the_dimensions_they_read():
    files = pres.pres_files(ROOT / "sql")
    waits = pres.file_dependencies({p.name: (p, p.read_text(encoding="utf-8")) for p in files})
    assert waits["010_report_order_lines.sql"] == set()
    assert waits["020_report_weblog_access.sql"] == set()
    assert all(waits[p.name] == set() for p in files if p.name.startswith("03"))
    assert waits["040_fact_order_line.sql"] == {"030_dim_date.sql", "031_dim_company.sql", "032_dim_customer.sql",
                                                "033_dim_product.sql"}
    assert waits["041_fact_weblog_access.sql"] == {"030_dim_date.sql", "032_dim_customer.sql", "034_dim_device.sql",
                                                   "035_dim_country.sql"}


def test_a_file_waits_for_an_earlier_writer_of_what_it_reads_and_an_earlier_reader_of_what_it_writes():
    waits = waits_of({
        "10_a.sql": "create table if not exists pres.a as select x from store_s.t with no data;",
        "20_reads_a.sql": "insert into pres.b select x from pres.a;",
        "30_overwrites_b_source.sql": "update pres.a set x = 1;",
        "40_alone.sql": "delete from pres.c where x in (select x from store_s.t);",
        "50_alters_c.sql": "alter table pres.c add column y int;",
    })
    assert waits == {
        "10_a.sql": set(),
        "20_reads_a.sql": {"10_a.sql"},
        "30_overwrites_b_source.sql": {"10_a.sql", "20_reads_a.sql"},  # 20 reads pres.a, which 30 writes
        "40_alone.sql": set(),
        "50_alters_c.sql": {"40_alone.sql"},
    }


def test_tables_named_and_written():
    named, written = pres.file_tables(Path("x.sql"), """
        create temporary table tmp_x as select k from store_s.t;
        insert into pres.f select k from tmp_x join pres.d on true;
        create index if not exists f_idx on pres.f (k);
    """)
    assert named == {"store_s.t", "pres.f", "pres.d"}
    assert written == {"pres.f"}


def test_parsed_tables_are_kept_by_text_and_read_back_without_parsing(tmp_path, monkeypatch):
    """tables_read writes completed/pres_tables.json once; a later process reads it and parses nothing;
    a changed file is parsed again, a damaged cache is ignored."""
    monkeypatch.setattr(pres, "_known_tables", {})
    monkeypatch.setattr(pres, "_unsaved", set())
    monkeypatch.setattr(pres, "_parse_cache", None)
    sql_dir = tmp_path / "sql"
    (sql_dir / "pres").mkdir(parents=True)
    (sql_dir / "pres" / "010_a.sql").write_text("insert into pres.a select k from store_s.t;")
    pres.use_parse_cache(tmp_path / "completed")
    assert pres.tables_read(sql_dir) == {"store_s.t": ["010_a.sql"]}
    cache = tmp_path / "completed" / pres.PARSE_CACHE_FILE
    assert list(json.loads(cache.read_text()).values()) == [[["pres.a", "store_s.t"], ["pres.a"]]]

    # a new process (empty memory) reads the cache and parses nothing
    monkeypatch.setattr(pres, "_known_tables", {})
    parsed = []
    real = pres._parsed_tables
    monkeypatch.setattr(pres, "_parsed_tables", lambda text: parsed.append(text) or real(text))
    pres.use_parse_cache(tmp_path / "completed")
    assert pres.tables_read(sql_dir) == {"store_s.t": ["010_a.sql"]} and parsed == []
    (sql_dir / "pres" / "010_a.sql").write_text("insert into pres.a select k from store_s.u;")
    assert pres.tables_read(sql_dir) == {"store_s.u": ["010_a.sql"]} and len(parsed) == 1

    cache.write_text("{not json")
    monkeypatch.setattr(pres, "_known_tables", {})
    pres.use_parse_cache(tmp_path / "completed")
    assert pres.tables_read(sql_dir) == {"store_s.u": ["010_a.sql"]} and len(parsed) == 2
