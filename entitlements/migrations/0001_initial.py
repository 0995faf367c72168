"""The plan models move here from billing without touching data: the tables keep their billing_* names.

State only: billing's 0003 removes the same models from billing's state. The content types (and so the
permissions, their group grants and the admin log) are renamed from billing to entitlements in place.
"""

import accounts.models
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ("plan", "planassignment", "planchange", "billingpause", "userusage")


def content_types_to(app_label: str, from_label: str):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        for model in MODELS:
            if not ContentType.objects.using(db).filter(app_label=app_label, model=model).exists():
                ContentType.objects.using(db).filter(app_label=from_label, model=model).update(app_label=app_label)

    return move


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0003_statementimport"),
        ("billing", "0002_seed_plans"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Plan',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('slug', models.SlugField(max_length=32, unique=True)),
                        ('name', models.CharField(max_length=64)),
                        ('rank', models.PositiveSmallIntegerField(help_text='Order from cheapest to richest; the lowest rank that unlocks a feature is the one named.', unique=True)),
                        ('description', models.CharField(blank=True, max_length=255)),
                        ('is_public', models.BooleanField(default=True, help_text='Shown on the pricing page.')),
                        ('currency', models.CharField(default='usd', max_length=3)),
                        ('price_monthly', models.DecimalField(decimal_places=2, default=0, help_text='Shown on the pricing page.', max_digits=10)),
                        ('price_yearly', models.DecimalField(decimal_places=2, default=0, help_text='Shown on the pricing page.', max_digits=10)),
                        ('stripe_price_monthly', models.CharField(blank=True, max_length=255, verbose_name='Stripe price id (monthly)')),
                        ('stripe_price_yearly', models.CharField(blank=True, max_length=255, verbose_name='Stripe price id (yearly)')),
                        ('trial_days', models.PositiveSmallIntegerField(default=0, help_text='Free trial on the first subscription.')),
                        ('limit_accounts', models.PositiveIntegerField(blank=True, null=True, verbose_name='MT5 accounts')),
                        ('limit_history_days', models.PositiveIntegerField(blank=True, null=True, verbose_name='history days')),
                        ('limit_copy_links', models.PositiveIntegerField(blank=True, null=True, verbose_name='copy links')),
                        ('limit_slaves_per_master', models.PositiveIntegerField(blank=True, null=True, verbose_name='slaves per master')),
                        ('analytics_advanced', models.BooleanField(default=False, verbose_name='advanced analytics')),
                        ('copy_trading', models.BooleanField(default=False)),
                        ('web_terminal', models.BooleanField(default=False, verbose_name='remote control / web terminal')),
                        ('templates', models.BooleanField(default=False, verbose_name='order templates')),
                        ('rules', models.BooleanField(default=False, verbose_name='rules engine')),
                        ('systeme_sync', models.BooleanField(default=False, verbose_name='Systeme.io sync')),
                        ('api_access', models.BooleanField(default=False, verbose_name='API access')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'db_table': 'billing_plan',
                        'ordering': ['rank'],
                    },
                ),
                migrations.CreateModel(
                    name='UserUsage',
                    fields=[
                    ],
                    options={
                        'verbose_name': 'usage per user',
                        'verbose_name_plural': 'usage per user',
                        'proxy': True,
                        'indexes': [],
                        'constraints': [],
                    },
                    bases=('accounts.user',),
                    managers=[
                        ('objects', accounts.models.UserManager()),
                    ],
                ),
                migrations.CreateModel(
                    name='BillingPause',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('paused_at', models.DateTimeField(auto_now_add=True)),
                        ('account', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='billing_pause', to='accounts.tradingaccount')),
                        ('plan', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='entitlements.plan')),
                    ],
                    options={
                        'db_table': 'billing_billingpause',
                    },
                ),
                migrations.CreateModel(
                    name='PlanAssignment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('manual_until', models.DateTimeField(blank=True, help_text='The staff choice ends then (blank: no end).', null=True)),
                        ('note', models.CharField(blank=True, max_length=255)),
                        ('subscription_id', models.CharField(blank=True, db_index=True, max_length=255)),
                        ('subscription_status', models.CharField(blank=True, choices=[('', 'No subscription'), ('trialing', 'Trialing'), ('active', 'Active'), ('past_due', 'Past due'), ('canceled', 'Canceled'), ('incomplete', 'Incomplete'), ('incomplete_expired', 'Incomplete (expired)'), ('unpaid', 'Unpaid'), ('paused', 'Paused')], default='', max_length=32)),
                        ('interval', models.CharField(blank=True, max_length=8)),
                        ('trial_end', models.DateTimeField(blank=True, null=True)),
                        ('current_period_end', models.DateTimeField(blank=True, null=True)),
                        ('cancel_at_period_end', models.BooleanField(default=False)),
                        ('past_due_since', models.DateTimeField(blank=True, null=True)),
                        ('trial_used', models.BooleanField(default=False)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('effective_plan', models.ForeignKey(blank=True, help_text='The plan the gates applied at the last change (kept to detect downgrades).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='entitlements.plan')),
                        ('manual_plan', models.ForeignKey(blank=True, help_text='Set by staff: overrides the default plan and any subscription.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='entitlements.plan')),
                        ('subscribed_plan', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='entitlements.plan')),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='plan_assignment', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'billing_planassignment',
                        'verbose_name': 'plan assignment',
                    },
                ),
                migrations.CreateModel(
                    name='PlanChange',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('reason', models.CharField(max_length=64)),
                        ('detail', models.CharField(blank=True, max_length=255)),
                        ('stripe_event_id', models.CharField(blank=True, max_length=255)),
                        ('accounts_paused', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('from_plan', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='entitlements.plan')),
                        ('to_plan', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='entitlements.plan')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='plan_changes', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'billing_planchange',
                        'ordering': ['-created_at', '-id'],
                        'indexes': [models.Index(fields=['user', '-created_at'], name='billing_pla_user_id_39ea09_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_to("entitlements", "billing"), content_types_to("billing", "entitlements")),
    ]
