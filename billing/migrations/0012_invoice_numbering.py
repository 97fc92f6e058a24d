"""Invoice numbering for each customer (Stripe's default outside the EU and the UK).

Accounts that exist keep numbering across the account, as they did: a change of scheme applies
to the invoices that follow it, and that is the owner's choice. Each customer gets a prefix of
its own, unique in its account, and its sequence starts at 1.
"""

from django.db import migrations, models

import billing.models.customers


def keep_account_numbering(apps, schema_editor):
    Account = apps.get_model("billing", "Account")
    Account.objects.update(invoice_numbering="account")


def give_prefixes(apps, schema_editor):
    Account = apps.get_model("billing", "Account")
    Customer = apps.get_model("billing", "Customer")
    for account_id in Account.objects.values_list("pk", flat=True).iterator():
        taken = {account_id.split("_", 1)[1][-8:].upper()}
        batch = []
        for customer in Customer.objects.filter(account_id=account_id).only("pk").iterator():
            prefix = billing.models.customers.new_invoice_prefix()
            while prefix in taken:
                prefix = billing.models.customers.new_invoice_prefix()
            taken.add(prefix)
            customer.invoice_prefix = prefix
            batch.append(customer)
            if len(batch) == 1000:
                Customer.objects.bulk_update(batch, ["invoice_prefix"])
                batch = []
        Customer.objects.bulk_update(batch, ["invoice_prefix"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_event_data_lz4"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="invoice_numbering",
            field=models.CharField(
                blank=True,
                choices=[
                    ("account", "Sequentially across the account"),
                    ("customer", "Sequentially for each customer"),
                ],
                default="",
                max_length=8,
            ),
        ),
        migrations.RunPython(keep_account_numbering, migrations.RunPython.noop),
        migrations.AddField(
            model_name="customer",
            name="invoice_prefix",
            field=models.CharField(default="", max_length=12),
        ),
        migrations.RunPython(give_prefixes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="customer",
            name="invoice_prefix",
            field=models.CharField(
                default=billing.models.customers.new_invoice_prefix, max_length=12
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="next_invoice_sequence",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                fields=("invoice_prefix", "account"), name="customer_invoice_prefix_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.CheckConstraint(
                condition=models.Q(("next_invoice_sequence__gte", 1)),
                name="customer_next_invoice_sequence_positive",
            ),
        ),
    ]
