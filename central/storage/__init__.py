"""Central's database: one interface over SQLite (the embedded default) and PostgreSQL.

`db` holds `CentralDatabase` (connections, the write lock, readers, migrations), `pg` the
PostgreSQL connection that speaks SQLite's dialect to central's code, `pg_database` the
PostgreSQL flavour of `CentralDatabase`.
"""
