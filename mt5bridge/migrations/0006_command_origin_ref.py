"""Commands carry an opaque origin: the copy link id becomes origin_ref "copy-link:<id>" and origin loses its list."""

from django.db import migrations, models
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat

COPY_LINK = "copy-link:"


def link_ids_to_refs(apps, schema_editor):
    Command = apps.get_model("mt5bridge", "Command")
    Command.objects.filter(link_id__isnull=False).update(
        origin_ref=Concat(Value(COPY_LINK), Cast("link_id", CharField()))
    )


def refs_to_link_ids(apps, schema_editor):
    Command = apps.get_model("mt5bridge", "Command")
    for pk, ref in Command.objects.filter(origin_ref__startswith=COPY_LINK).values_list("pk", "origin_ref"):
        tail = ref[len(COPY_LINK) :]
        if tail.isdigit():
            Command.objects.filter(pk=pk).update(link_id=int(tail))


class Migration(migrations.Migration):
    dependencies = [
        ("mt5bridge", "0005_simulated_server_is_its_own_app"),
    ]

    operations = [
        migrations.AddField(
            model_name="command",
            name="origin_ref",
            field=models.CharField(
                blank=True,
                default="",
                help_text="What queued it, in its origin's terms (e.g. copy-link:123).",
                max_length=64,
            ),
        ),
        migrations.RunPython(link_ids_to_refs, refs_to_link_ids, elidable=False),
        migrations.RemoveField(model_name="command", name="link_id"),
        migrations.AlterField(model_name="command", name="origin", field=models.CharField(max_length=16)),
    ]
