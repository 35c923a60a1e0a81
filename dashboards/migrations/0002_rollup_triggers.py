"""Triggers on responses_response that append rollup deltas; deltas for existing responses.

PostgreSQL: statement-level triggers with transition tables (one INSERT … SELECT per statement,
so a COPY or bulk_create of many rows costs one extra statement, not one per row).
SQLite (the embedded default): row-level triggers. Both write the same rows; see
dashboards/models.py for why this is a trigger and not a signal.
"""

from django.db import migrations

DELTA_COLUMNS = "company_id, survey_id, created_at, channel, score, delta"
# A change of any of these moves the answer to another rollup key.
KEY_COLUMNS = ("company_id", "survey_id", "created_at", "channel", "score")
_CHANGED = (
    f"({', '.join(f'o.{c}' for c in KEY_COLUMNS)})"
    f" IS DISTINCT FROM ({', '.join(f'n.{c}' for c in KEY_COLUMNS)})"
)

POSTGRES_INSTALL = [
    f"""
    CREATE FUNCTION dashboards_rollup_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        SELECT company_id, survey_id, created_at, channel, score, 1 FROM new_rows;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION dashboards_rollup_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        SELECT company_id, survey_id, created_at, channel, score, -1 FROM old_rows;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION dashboards_rollup_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        SELECT o.company_id, o.survey_id, o.created_at, o.channel, o.score, -1
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED}
        UNION ALL
        SELECT n.company_id, n.survey_id, n.created_at, n.channel, n.score, 1
        FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED};
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER dashboards_rollup_inserted AFTER INSERT ON responses_response
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dashboards_rollup_inserted()
    """,
    """
    CREATE TRIGGER dashboards_rollup_deleted AFTER DELETE ON responses_response
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dashboards_rollup_deleted()
    """,
    """
    CREATE TRIGGER dashboards_rollup_updated AFTER UPDATE ON responses_response
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION dashboards_rollup_updated()
    """,
]
POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS dashboards_rollup_inserted ON responses_response",
    "DROP TRIGGER IF EXISTS dashboards_rollup_deleted ON responses_response",
    "DROP TRIGGER IF EXISTS dashboards_rollup_updated ON responses_response",
    "DROP FUNCTION IF EXISTS dashboards_rollup_inserted()",
    "DROP FUNCTION IF EXISTS dashboards_rollup_deleted()",
    "DROP FUNCTION IF EXISTS dashboards_rollup_updated()",
]

SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER dashboards_rollup_inserted AFTER INSERT ON responses_response
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        VALUES (NEW.company_id, NEW.survey_id, NEW.created_at, NEW.channel, NEW.score, 1);
    END
    """,
    f"""
    CREATE TRIGGER dashboards_rollup_deleted AFTER DELETE ON responses_response
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        VALUES (OLD.company_id, OLD.survey_id, OLD.created_at, OLD.channel, OLD.score, -1);
    END
    """,
    f"""
    CREATE TRIGGER dashboards_rollup_updated
    AFTER UPDATE OF {", ".join(KEY_COLUMNS)} ON responses_response
    WHEN {" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in KEY_COLUMNS)}
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        VALUES (OLD.company_id, OLD.survey_id, OLD.created_at, OLD.channel, OLD.score, -1);
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        VALUES (NEW.company_id, NEW.survey_id, NEW.created_at, NEW.channel, NEW.score, 1);
    END
    """,
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS dashboards_rollup_inserted",
    "DROP TRIGGER IF EXISTS dashboards_rollup_deleted",
    "DROP TRIGGER IF EXISTS dashboards_rollup_updated",
]

# The answers recorded before the triggers existed: one +1 delta each; the fold does the rest.
# On PostgreSQL CREATE TRIGGER locked the table against writes until this migration commits,
# so no answer falls between the two.
BACKFILL = (
    f"INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS}) "
    "SELECT company_id, survey_id, created_at, channel, score, 1 FROM responses_response"
)


def _run(schema_editor, statements: list[str]) -> None:
    for sql in statements:
        schema_editor.execute(sql)


def install(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        _run(schema_editor, POSTGRES_INSTALL)
    elif vendor == "sqlite":
        _run(schema_editor, SQLITE_INSTALL)
    else:
        raise RuntimeError(f"rollup triggers are written for PostgreSQL and SQLite, not {vendor}")
    schema_editor.execute(BACKFILL)


def remove(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    _run(schema_editor, POSTGRES_REMOVE if vendor == "postgresql" else SQLITE_REMOVE)
    schema_editor.execute("DELETE FROM dashboards_rollupdelta")
    schema_editor.execute("DELETE FROM dashboards_rollup")
    schema_editor.execute("DELETE FROM dashboards_rollupzone")


class Migration(migrations.Migration):
    dependencies = [("dashboards", "0001_rollups")]

    operations = [migrations.RunPython(install, remove)]
