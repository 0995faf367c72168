"""DRF's API tokens are retired (people use JWT now): drop their table, which held every key in clear."""

from django.db import migrations


def drop_api_tokens(apps, schema_editor):
    cascade = " CASCADE" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP TABLE IF EXISTS authtoken_token{cascade}")
    # Its permissions go with the content type (roles never granted them).
    apps.get_model("contenttypes", "ContentType").objects.filter(app_label="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_statementimport"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(drop_api_tokens, migrations.RunPython.noop)]
