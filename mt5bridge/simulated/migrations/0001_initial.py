"""The simulated MT5 server's tables, moved from mt5bridge as they are (state only: no table is created or renamed).

The tables were created by mt5bridge 0001 and keep their names (``mt5bridge_sim*``, with the version triggers
of mt5bridge 0002); this migration only tells Django they now belong to this app, and moves their content
types so the permissions granted on them stay granted.
"""

import django.db.models.deletion
from django.db import migrations, models


MODELS = ("simserver", "simgroup", "simaccount", "simposition", "simorder", "simdeal")


def move_content_types(apps, schema_editor, source="mt5bridge", target="mt5sim"):
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        if not content_type.objects.filter(app_label=target, model=model).exists():
            content_type.objects.filter(app_label=source, model=model).update(app_label=target)


def move_content_types_back(apps, schema_editor):
    move_content_types(apps, schema_editor, source="mt5sim", target="mt5bridge")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("mt5bridge", "0004_fewer_indexes_on_hot_inserts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='SimGroup',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=64)),
                        ('company', models.CharField(blank=True, max_length=128)),
                        ('currency', models.CharField(default='USD', max_length=8)),
                        ('margin_call', models.DecimalField(decimal_places=2, default=100, max_digits=8)),
                        ('stop_out', models.DecimalField(decimal_places=2, default=50, max_digits=8)),
                    ],
                    options={
                        'db_table': 'mt5bridge_simgroup',
                        'ordering': ['server_id', 'name'],
                    },
                ),
                migrations.CreateModel(
                    name='SimServer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=64, unique=True)),
                        ('company', models.CharField(blank=True, max_length=128)),
                        ('next_ticket', models.BigIntegerField(default=1)),
                    ],
                    options={
                        'db_table': 'mt5bridge_simserver',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='SimAccount',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('login', models.BigIntegerField(unique=True)),
                        ('password', models.CharField(max_length=128)),
                        ('server', models.CharField(max_length=64)),
                        ('name', models.CharField(blank=True, max_length=128)),
                        ('email', models.CharField(blank=True, max_length=128)),
                        ('country', models.CharField(blank=True, max_length=64)),
                        ('lead_source', models.CharField(blank=True, max_length=64)),
                        ('lead_campaign', models.CharField(blank=True, max_length=64)),
                        ('agent', models.BigIntegerField(default=0)),
                        ('comment', models.CharField(blank=True, max_length=64)),
                        ('currency', models.CharField(default='USD', max_length=8)),
                        ('leverage', models.PositiveIntegerField(default=100)),
                        ('margin_mode', models.PositiveSmallIntegerField(choices=[(0, 'netting'), (2, 'hedging')], default=2)),
                        ('trade_mode', models.PositiveSmallIntegerField(default=0, help_text='ACCOUNT_TRADE_MODE: 0 demo, 1 contest, 2 real')),
                        ('balance', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('credit', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('registration', models.DateTimeField()),
                        ('checked_at', models.DateTimeField()),
                        ('version', models.BigIntegerField(default=0)),
                        ('history_seeded', models.BooleanField(default=False)),
                        ('orders_open', models.PositiveIntegerField(default=0)),
                        ('group', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='accounts', to='mt5sim.simgroup')),
                    ],
                    options={
                        'db_table': 'mt5bridge_simaccount',
                        'ordering': ['login'],
                    },
                ),
                migrations.AddField(
                    model_name='simgroup',
                    name='server',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='groups', to='mt5sim.simserver'),
                ),
                migrations.CreateModel(
                    name='SimDeal',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('ticket', models.BigIntegerField()),
                        ('order', models.BigIntegerField(default=0)),
                        ('time', models.DateTimeField()),
                        ('type', models.PositiveSmallIntegerField()),
                        ('entry', models.PositiveSmallIntegerField(default=0)),
                        ('magic', models.BigIntegerField(default=0)),
                        ('position_id', models.BigIntegerField(default=0)),
                        ('reason', models.PositiveSmallIntegerField(default=0)),
                        ('volume', models.DecimalField(decimal_places=4, default=0, max_digits=14)),
                        ('price', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                        ('commission', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('swap', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('profit', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('fee', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('symbol', models.CharField(blank=True, max_length=32)),
                        ('comment', models.CharField(blank=True, max_length=31)),
                        ('external_id', models.CharField(blank=True, max_length=32)),
                        ('account', models.ForeignKey(db_column='login', on_delete=django.db.models.deletion.CASCADE, related_name='deals', to='mt5sim.simaccount', to_field='login')),
                    ],
                    options={
                        'db_table': 'mt5bridge_simdeal',
                        'ordering': ['time', 'ticket'],
                        'indexes': [models.Index(fields=['account', 'time'], name='sim_deal_account_time'), models.Index(fields=['account', 'comment'], name='sim_deal_account_comment'), models.Index(fields=['account', 'position_id'], name='sim_deal_account_position')],
                    },
                ),
                migrations.CreateModel(
                    name='SimOrder',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('ticket', models.BigIntegerField()),
                        ('symbol', models.CharField(max_length=32)),
                        ('type', models.PositiveSmallIntegerField()),
                        ('state', models.PositiveSmallIntegerField(default=1)),
                        ('volume_initial', models.DecimalField(decimal_places=4, max_digits=14)),
                        ('volume_current', models.DecimalField(decimal_places=4, max_digits=14)),
                        ('price_open', models.DecimalField(decimal_places=10, max_digits=24)),
                        ('price_stoplimit', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                        ('sl', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                        ('tp', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                        ('magic', models.BigIntegerField(default=0)),
                        ('comment', models.CharField(blank=True, max_length=31)),
                        ('type_time', models.PositiveSmallIntegerField(default=0)),
                        ('time_setup', models.DateTimeField()),
                        ('time_update', models.DateTimeField()),
                        ('time_expiration', models.DateTimeField(blank=True, null=True)),
                        ('time_done', models.DateTimeField(blank=True, null=True)),
                        ('position_id', models.BigIntegerField(default=0)),
                        ('account', models.ForeignKey(db_column='login', on_delete=django.db.models.deletion.CASCADE, related_name='orders', to='mt5sim.simaccount', to_field='login')),
                    ],
                    options={
                        'db_table': 'mt5bridge_simorder',
                        'ordering': ['time_setup', 'ticket'],
                        'indexes': [models.Index(fields=['account', 'state'], name='sim_order_account_state')],
                    },
                ),
                migrations.CreateModel(
                    name='SimPosition',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('ticket', models.BigIntegerField()),
                        ('identifier', models.BigIntegerField()),
                        ('symbol', models.CharField(max_length=32)),
                        ('type', models.PositiveSmallIntegerField()),
                        ('volume', models.DecimalField(decimal_places=4, max_digits=14)),
                        ('price_open', models.DecimalField(decimal_places=10, max_digits=24)),
                        ('sl', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                        ('tp', models.DecimalField(decimal_places=10, default=0, max_digits=24)),
                        ('magic', models.BigIntegerField(default=0)),
                        ('comment', models.CharField(blank=True, max_length=31)),
                        ('reason', models.PositiveSmallIntegerField(default=0)),
                        ('time', models.DateTimeField()),
                        ('time_update', models.DateTimeField()),
                        ('swap_accrued', models.DecimalField(decimal_places=2, default=0, max_digits=20)),
                        ('swap_since', models.DateTimeField()),
                        ('account', models.ForeignKey(db_column='login', on_delete=django.db.models.deletion.CASCADE, related_name='positions', to='mt5sim.simaccount', to_field='login')),
                    ],
                    options={
                        'db_table': 'mt5bridge_simposition',
                        'ordering': ['time', 'ticket'],
                        'indexes': [models.Index(fields=['account', 'ticket'], name='sim_position_account_ticket')],
                    },
                ),
                migrations.AddConstraint(
                    model_name='simgroup',
                    constraint=models.UniqueConstraint(fields=('server', 'name'), name='sim_group_unique_per_server'),
                ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
