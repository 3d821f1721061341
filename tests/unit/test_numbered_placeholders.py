"""worker/precompiled.py `_numbered`: psycopg's named placeholders as PostgreSQL's `$n`, computed
once per statement so psycopg need not parse the SQL on each run."""

from __future__ import annotations

from worker.precompiled import _driver_query, _numbered


def test_each_name_gets_one_number_in_order_of_first_use():
    sql = "SELECT %(b)s::uuid, %(a)s, %(b)s FROM t WHERE x = %(c_1)s"
    assert _numbered(sql) == ("SELECT $1::uuid, $2, $1 FROM t WHERE x = $3", ("b", "a", "c_1"))


def test_an_escaped_percent_becomes_a_literal_one():
    assert _numbered("SELECT 100%% WHERE n LIKE 'a%%' AND m = %(m)s") == (
        "SELECT 100% WHERE n LIKE 'a%' AND m = $1",
        ("m",),
    )


def test_sql_with_another_percent_form_is_left_to_psycopg():
    assert _numbered("SELECT %s") is None
    assert _numbered("SELECT %(a)s, 5 % 2") is None


def test_a_statement_without_parameters_takes_an_empty_tuple():
    assert _numbered("SELECT 1") == ("SELECT 1", ())


def test_only_postgresql_with_named_parameters_is_numbered():
    assert _driver_query("SELECT %(a)s", "postgresql", True) == ("SELECT $1", ("a",))
    assert _driver_query("SELECT ?", "sqlite", False) == ("SELECT ?", None)
    assert _driver_query("SELECT %s", "postgresql", True) == ("SELECT %s", None)
