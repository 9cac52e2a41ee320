"""Database access: connection pool, embedded server, migrations and named SQL queries."""
