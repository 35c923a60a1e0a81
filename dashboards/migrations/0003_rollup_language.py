"""Language joins the rollup key (segments by language come from the rollup too).

The triggers are replaced by ones that carry the language, and the rollup is recounted from
the responses (deltas for every response; the fold does the rest). On PostgreSQL the
responses table is locked against writes until this migration commits, so no answer falls
between the old triggers and the new ones.
"""

import importlib

from django.db import migrations, models

DELTA_COLUMNS = "company_id, survey_id, created_at, channel, language, score, delta"
KEY_COLUMNS = ("company_id", "survey_id", "created_at", "channel", "language", "score")
_OLD = ", ".join(f"o.{c}" for c in KEY_COLUMNS)
_NEW = ", ".join(f"n.{c}" for c in KEY_COLUMNS)
_CHANGED = f"({_OLD}) IS DISTINCT FROM ({_NEW})"

POSTGRES_INSTALL = [
    f"""
    CREATE FUNCTION dashboards_rollup_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        SELECT company_id, survey_id, created_at, channel, language, score, 1 FROM new_rows;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION dashboards_rollup_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        SELECT company_id, survey_id, created_at, channel, language, score, -1 FROM old_rows;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION dashboards_rollup_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS})
        SELECT {_OLD}, -1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED}
        UNION ALL
        SELECT {_NEW}, 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE {_CHANGED};
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

_VALUES_OLD = ", ".join(f"OLD.{c}" for c in KEY_COLUMNS)
_VALUES_NEW = ", ".join(f"NEW.{c}" for c in KEY_COLUMNS)
SQLITE_INSTALL = [
    f"""
    CREATE TRIGGER dashboards_rollup_inserted AFTER INSERT ON responses_response
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS}) VALUES ({_VALUES_NEW}, 1);
    END
    """,
    f"""
    CREATE TRIGGER dashboards_rollup_deleted AFTER DELETE ON responses_response
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS}) VALUES ({_VALUES_OLD}, -1);
    END
    """,
    f"""
    CREATE TRIGGER dashboards_rollup_updated
    AFTER UPDATE OF {", ".join(KEY_COLUMNS)} ON responses_response
    WHEN {" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in KEY_COLUMNS)}
    BEGIN
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS}) VALUES ({_VALUES_OLD}, -1);
        INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS}) VALUES ({_VALUES_NEW}, 1);
    END
    """,
]

BACKFILL = (
    f"INSERT INTO dashboards_rollupdelta ({DELTA_COLUMNS}) "
    "SELECT company_id, survey_id, created_at, channel, language, score, 1 FROM responses_response"
)
CLEAR = [
    "DELETE FROM dashboards_rollupdelta",
    "DELETE FROM dashboards_rollup",
    "DELETE FROM dashboards_rollupzone",
]


def _previous():
    return importlib.import_module("dashboards.migrations.0002_rollup_triggers")


def _run(schema_editor, statements) -> None:
    for sql in statements:
        schema_editor.execute(sql)


def drop_old_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute("LOCK TABLE responses_response IN SHARE ROW EXCLUSIVE MODE")
    previous = _previous()
    _run(schema_editor, previous.POSTGRES_REMOVE if vendor == "postgresql" else previous.SQLITE_REMOVE)
    _run(schema_editor, CLEAR)


def install_new_triggers(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    _run(schema_editor, POSTGRES_INSTALL if vendor == "postgresql" else SQLITE_INSTALL)
    schema_editor.execute(BACKFILL)


def drop_new_triggers(apps, schema_editor) -> None:
    previous = _previous()
    vendor = schema_editor.connection.vendor
    _run(schema_editor, previous.POSTGRES_REMOVE if vendor == "postgresql" else previous.SQLITE_REMOVE)
    _run(schema_editor, CLEAR)


def reinstall_old_triggers(apps, schema_editor) -> None:
    _previous().install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("dashboards", "0002_rollup_triggers")]

    operations = [
        migrations.RunPython(drop_old_triggers, reinstall_old_triggers),
        migrations.RemoveConstraint(model_name="rollup", name="rollup_key"),
        migrations.AddField(
            model_name="rollup",
            name="language",
            field=models.CharField(default="", max_length=8),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="rollupdelta",
            name="language",
            field=models.CharField(default="", max_length=8),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="rollup",
            constraint=models.UniqueConstraint(
                fields=("company", "survey", "day", "channel", "language", "score"),
                name="rollup_key_language",
            ),
        ),
        migrations.RunPython(install_new_triggers, drop_new_triggers),
    ]
