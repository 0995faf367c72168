"""The simulated MT5 server's models now belong to the mt5sim app (state only: the mt5bridge_sim* tables stay)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('mt5bridge', '0004_fewer_indexes_on_hot_inserts'),
        ('mt5sim', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name='simaccount',
                    name='group',
                ),
                migrations.RemoveField(
                    model_name='simposition',
                    name='account',
                ),
                migrations.RemoveField(
                    model_name='simorder',
                    name='account',
                ),
                migrations.RemoveField(
                    model_name='simgroup',
                    name='server',
                ),
                migrations.DeleteModel(
                    name='SimDeal',
                ),
                migrations.DeleteModel(
                    name='SimPosition',
                ),
                migrations.DeleteModel(
                    name='SimAccount',
                ),
                migrations.DeleteModel(
                    name='SimOrder',
                ),
                migrations.DeleteModel(
                    name='SimGroup',
                ),
                migrations.DeleteModel(
                    name='SimServer',
                ),
            ],
        ),
    ]
