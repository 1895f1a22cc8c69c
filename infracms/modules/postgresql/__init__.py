"""The `postgresql` module: a PostgreSQL server, its roles and databases."""
