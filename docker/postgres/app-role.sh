#!/bin/sh
# Runs once, when the postgres service initialises its volume (docker-entrypoint-initdb.d):
# the role the app connects as. It owns nothing and may only read and write rows, so the
# row-level security policies the migrations put on every tenant table bind it; the tables
# are created by $POSTGRES_USER, who runs the migrations (MIGRATION_DATABASE_URL).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$POSTGRES_APP_PASSWORD" <<'SQL'
CREATE ROLE nps_app LOGIN PASSWORD :'app_password';
GRANT CONNECT ON DATABASE nps TO nps_app;
GRANT USAGE ON SCHEMA public TO nps_app;
-- Every table and sequence the owner creates later (each migration) is granted as it appears.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nps_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO nps_app;
SQL
