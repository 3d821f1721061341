"""Planner statistics on a PostgreSQL server that gathers none for our tables (autovacuum off).

The hot statements are prepared once per connection (psycopg, after a statement's fifth run), and
PostgreSQL may keep one generic plan for them. A plan made while the tables were nearly empty, when
every index costs the same, can read all of an org's rows through an ``org_id`` index where the
primary key reads one, and nothing replaces it until the table is ANALYZEd (ANALYZE invalidates the
plans that read it). Auto-analyze does that on a server where autovacuum runs. Where it does not (the
server's ``autovacuum`` off, or a table's ``autovacuum_enabled`` false), each sweeper pass ANALYZEs
those of our tables that were never analyzed and hold at least ``MIN_ROWS`` rows, or whose rows were
mostly written since the last ANALYZE, and says so in the log. Measured on the web edge bench: 1.6
against 8-27 ms of PostgreSQL CPU per ``POST /api/events`` (BENCHMARKS.md, "Web edge").
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from worker.models import Base

log = logging.getLogger(__name__)

# A table this small costs little to read whichever plan reads it; below it, no ANALYZE.
MIN_ROWS = 1000

# Our tables PostgreSQL's autovacuum leaves alone (off on the server, or off for the table), with rows
# enough and statistics never gathered or mostly out of date.
_UNMANAGED = text(
    """
    SELECT s.relname
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema()
      AND s.relname = ANY(:ours)
      AND (
        current_setting('autovacuum') = 'off'
        OR EXISTS (
          SELECT 1 FROM unnest(c.reloptions) AS o
          WHERE split_part(o, '=', 1) = 'autovacuum_enabled'
            AND lower(split_part(o, '=', 2)) IN ('f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0')
        )
      )
      AND s.n_live_tup >= :min_rows
      AND (coalesce(s.last_analyze, s.last_autoanalyze) IS NULL OR s.n_mod_since_analyze > s.n_live_tup / 2)
    ORDER BY s.relname
    """
)


def analyze_unmanaged(conn: Connection, min_rows: int = MIN_ROWS) -> list[str]:
    """ANALYZE our tables autovacuum leaves alone whose statistics are missing or mostly out of date;
    the names of those analyzed (none on SQLite, nor where autovacuum runs)."""
    if conn.dialect.name != "postgresql":
        return []
    ours = sorted(Base.metadata.tables)
    names = list(conn.execute(_UNMANAGED, {"ours": ours, "min_rows": min_rows}).scalars())
    for name in names:
        conn.exec_driver_sql(f'ANALYZE "{name}"')  # a name of our metadata, listed by the catalog
    if names:
        log.warning(
            "PostgreSQL's autovacuum does not analyze %s: ANALYZEd them (the planner's statistics; turn "
            "autovacuum on, see docs/configuration.md)",
            ", ".join(names),
        )
    return names
