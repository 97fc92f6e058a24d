"""The support admin: every billing model loads, links, searches and stays cheap to list."""

import json

import pytest
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, quote
from django.contrib.admin.widgets import AutocompleteSelect, ForeignKeyRawIdWidget
from django.contrib.messages import get_messages
from django.db import connection
from django.forms import ModelChoiceField
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from billing.admin import BillingAdmin, SubscriptionItemInline
from billing.choices import (
    BillingReason,
    InvoiceStatus,
    JobStatus,
    RetryMode,
    Role,
    SubscriptionStatus,
)
from billing.models import (
    Account,
    ApiKey,
    ApplicationFee,
    BalanceTransaction,
    Coupon,
    Customer,
    CustomerBalanceTransaction,
    Discount,
    DueJob,
    Event,
    ExchangeRate,
    IdempotencyKey,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    Membership,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    RecoverySettings,
    Subscription,
    SubscriptionItem,
    TestClock,
    Transfer,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.services.customers import add_card
from billing.services.subscriptions import create_subscription
from tests import factories

# Every billing model the admin registers, read when the tests are collected: a model
# registered later is tested here too, and fails loudly until it has a builder below.
REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label == "billing"),
    key=lambda model: model.__name__,
)


def _customer(account, i):
    return factories.make_customer(account, email=f"customer{i}@example.com", name=f"Cust {i}")


def _discount(account, i):
    customer = _customer(account, i)
    coupon = factories.make_coupon(account, code=f"SAVE{i}")
    subscription = factories.make_subscription(customer)
    return factories.make_discount(customer, coupon=coupon, subscription=subscription)


def _invoice(account, i):
    customer = _customer(account, i)
    return factories.make_invoice(customer, subscription=factories.make_subscription(customer))


def _webhook_delivery(account, i):
    endpoint = WebhookEndpoint.objects.create(
        account=account, url=f"https://hooks.example.com/d{i}", enabled_events=["*"]
    )
    return WebhookDelivery.objects.create(
        account=account,
        event=factories.make_event(account, obj=_customer(account, i)),
        endpoint=endpoint,
    )


def _ledger_row(account, i, **kwargs):
    kwargs.setdefault("type", "charge")
    amount = kwargs.pop("amount", 1000 + i)
    return BalanceTransaction.objects.create(
        account=account,
        amount=amount,
        net=amount,
        currency="usd",
        source=f"pi_admin{i}",
        **kwargs,
    )


def _transfer(account, i):
    destination = factories.make_connected_account(account, name=f"Destination {i}")
    return Transfer.objects.create(
        account=account,
        destination=destination,
        amount=900 + i,
        currency="usd",
        destination_payment=f"py_admin{i}",
        invoice=_invoice(account, i),
        balance_transaction=_ledger_row(account, i, type="transfer", amount=-(900 + i)),
    )


def _application_fee(account, i):
    connected = factories.make_connected_account(account, name=f"Fee payer {i}")
    return ApplicationFee.objects.create(
        account=account,
        connected_account=connected,
        amount=100 + i,
        currency="usd",
        invoice=_invoice(connected, i),
        balance_transaction=_ledger_row(account, i, type="application_fee", amount=100 + i),
    )


# One saved object of each model, the i-th of its kind (so unique fields stay unique).
BUILDERS = {
    Account: lambda account, i: factories.make_connected_account(account, name=f"Shop {i}"),
    ApiKey: lambda account, i: factories.make_api_key(account, name=f"Key {i}"),
    ApplicationFee: _application_fee,
    BalanceTransaction: _ledger_row,
    Coupon: lambda account, i: factories.make_coupon(account, code=f"SPRING{i}"),
    Customer: _customer,
    CustomerBalanceTransaction: lambda account, i: factories.make_balance_transaction(
        _customer(account, i)
    ),
    Discount: _discount,
    DueJob: lambda account, i: factories.make_due_job(
        factories.make_subscription(_customer(account, i))
    ),
    Event: lambda account, i: factories.make_event(account, obj=_customer(account, i)),
    ExchangeRate: lambda account, i: factories.make_exchange_rate(
        factories.make_account(f"Rates {i}")
    ),
    IdempotencyKey: lambda account, i: IdempotencyKey.objects.create(
        account=account,
        key=f"k{i}",
        method="POST",
        path="/v1/customers",
        fingerprint="x",
        request_id=f"req_{i}",
    ),
    Invoice: _invoice,
    InvoiceItem: lambda account, i: factories.make_invoice_item(
        _customer(account, i), price=factories.make_price(account, interval=None)
    ),
    InvoiceLineItem: lambda account, i: _invoice(account, i).lines.get(),
    Membership: lambda account, i: factories.make_member(
        account, email=f"member{i}@example.com"
    ).memberships.get(),
    PaymentIntent: lambda account, i: factories.make_payment_intent(_invoice(account, i)),
    PaymentMethod: lambda account, i: factories.make_card(_customer(account, i)),
    Price: lambda account, i: factories.make_price(account),
    Product: lambda account, i: factories.make_price(account).product,
    RecoverySettings: lambda account, i: factories.make_recovery_settings(
        factories.make_account(f"Recovering {i}")
    ),
    Subscription: lambda account, i: factories.make_subscription(_customer(account, i)),
    SubscriptionItem: lambda account, i: factories.make_subscription(
        _customer(account, i)
    ).items.get(),
    TestClock: lambda account, i: factories.make_test_clock(account, name=f"Clock {i}"),
    Transfer: _transfer,
    WebhookEndpoint: lambda account, i: WebhookEndpoint.objects.create(
        account=account, url=f"https://hooks.example.com/{i}", enabled_events=["*"]
    ),
    WebhookDelivery: lambda account, i: _webhook_delivery(account, i),
    WebhookAttempt: lambda account, i: WebhookAttempt.objects.create(
        delivery=_webhook_delivery(account, i), status_code=500, error="HTTP 500"
    ),
}

# Model fields deliberately kept off change pages.
HIDDEN_FIELDS = {
    ApiKey: {"key_hash", "last4"},  # the hash never; last4 only inside the redacted key
    DueJob: {"target_id", "last_error"},  # shown as a link and pretty-printed
    Event: {"data", "object_id", "customer_id"},  # shown pretty-printed and as links
    PaymentIntent: {"client_secret"},  # a secret, and not editable
}


def build(model, account, i=0):
    if model not in BUILDERS:
        pytest.fail(f"no builder for {model.__name__}: add one to BUILDERS in {__name__}")
    return BUILDERS[model](account, i)


def admin_url(model, view, *args):
    # The admin escapes "_" in primary keys in its URLs (`cus_8D…` → `cus_5F8D…`).
    args = [quote(arg) for arg in args]
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Every test signs in a superuser and some make twenty members: the real hasher is slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_request(rf, admin_user):
    """A request by the superuser, for asking model admins what they would render."""
    request = rf.get("/admin/")
    request.user = admin_user
    return request


by_name = pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model.__name__)


def test_every_billing_model_is_registered():
    missing = [
        model.__name__
        for model in apps.get_app_config("billing").get_models()
        if not admin.site.is_registered(model)
    ]
    assert missing == []


@by_name
def test_admin_uses_the_shared_defaults(model):
    model_admin = admin.site._registry[model]
    assert isinstance(model_admin, BillingAdmin)
    assert model_admin.show_full_result_count is False


@by_name
def test_changelist_lists_the_object(admin_client, account, model):
    obj = build(model, account)
    response = admin_client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert admin_url(model, "change", obj.pk) in response.text


@by_name
def test_add_page_loads_when_adding_is_permitted(admin_client, admin_request, model):
    permitted = admin.site._registry[model].has_add_permission(admin_request)
    response = admin_client.get(admin_url(model, "add"))
    assert response.status_code == (200 if permitted else 403)


@by_name
def test_change_page_loads(admin_client, account, model):
    obj = build(model, account)
    response = admin_client.get(admin_url(model, "change", obj.pk))
    assert response.status_code == 200


@by_name
def test_change_page_shows_every_model_field(admin_request, account, model):
    obj = build(model, account)
    fieldsets = admin.site._registry[model].get_fieldsets(admin_request, obj)
    expected = {field.name for field in model._meta.concrete_fields}
    missing = expected - set(flatten_fieldsets(fieldsets)) - HIDDEN_FIELDS.get(model, set())
    assert missing == set()


@by_name
def test_change_form_never_selects_from_every_related_row(admin_request, account, model):
    obj = build(model, account)
    model_admin = admin.site._registry[model]
    form_classes = [model_admin.get_form(admin_request, obj)]
    form_classes += [
        formset.form for formset, _ in model_admin.get_formsets_with_inlines(admin_request, obj)
    ]
    full_selects = [
        f"{form_class.__name__}.{name}"
        for form_class in form_classes
        for name, field in form_class.base_fields.items()
        if isinstance(field, ModelChoiceField)
        and not isinstance(
            getattr(field.widget, "widget", field.widget),
            ForeignKeyRawIdWidget | AutocompleteSelect,
        )
    ]
    assert full_selects == []


@by_name
def test_changelist_query_count_does_not_grow_with_rows(admin_client, account, model):
    url = admin_url(model, "changelist")
    build(model, account, 0)
    admin_client.get(url)  # warm per-process caches (content types, sessions)
    with CaptureQueriesContext(connection) as one_row:
        assert admin_client.get(url).status_code == 200
    for i in range(1, 20):
        build(model, account, i)
    with CaptureQueriesContext(connection) as twenty_rows:
        assert admin_client.get(url).status_code == 200
    assert len(twenty_rows) == len(one_row), [q["sql"] for q in twenty_rows.captured_queries]


def test_customer_search_by_email_finds_the_customer(admin_client, account):
    jenny = factories.make_customer(account, email="jenny.rosen@example.com")
    other = factories.make_customer(account, email="someone.else@example.com", name="Else")
    response = admin_client.get(admin_url(Customer, "changelist"), {"q": "jenny.rosen@"})
    assert response.status_code == 200
    assert admin_url(Customer, "change", jenny.pk) in response.text
    assert admin_url(Customer, "change", other.pk) not in response.text


def test_subscription_changelist_links_to_the_customer(admin_client, customer):
    factories.make_subscription(customer)
    response = admin_client.get(admin_url(Subscription, "changelist"))
    assert f'<a href="{admin_url(Customer, "change", customer.pk)}">' in response.text


def test_invoice_changelist_formats_amounts(admin_client, customer):
    factories.make_invoice(customer, amount=123456)
    response = admin_client.get(admin_url(Invoice, "changelist"))
    assert "$1,234.56" in response.text


def test_event_admin_has_no_add_permission(admin_client, admin_request):
    assert admin.site._registry[Event].has_add_permission(admin_request) is False
    assert admin_client.get(admin_url(Event, "add")).status_code == 403


def test_event_admin_cannot_change_or_delete(admin_request, account):
    event = factories.make_event(account)
    event_admin = admin.site._registry[Event]
    assert event_admin.has_change_permission(admin_request, event) is False
    assert event_admin.has_delete_permission(admin_request, event) is False
    assert event_admin.has_view_permission(admin_request, event) is True


def test_event_data_is_pretty_printed(admin_client, account):
    event = factories.make_event(account)
    response = admin_client.get(admin_url(Event, "change", event.pk))
    pretty = json.dumps(event.data, indent=2, sort_keys=True)
    assert f">{escape(pretty)}</pre>" in response.text


def test_event_links_to_the_object_it_is_about(admin_client, customer):
    event = factories.make_event(customer.account, obj=customer)
    response = admin_client.get(admin_url(Event, "change", event.pk))
    assert admin_url(Customer, "change", customer.pk) in response.text


def test_api_key_hash_is_never_shown(admin_client, account):
    key = factories.make_api_key(account)
    for url in (admin_url(ApiKey, "change", key.pk), admin_url(Account, "change", account.pk)):
        response = admin_client.get(url)
        assert key.key_hash not in response.text
        assert key.raw not in response.text
        assert key.redacted in response.text


def test_account_page_shows_memberships_and_exchange_rates(admin_client, account, owner):
    factories.make_exchange_rate(account, currency="eur")
    response = admin_client.get(admin_url(Account, "change", account.pk))
    assert 'name="exchange_rates-0-rate"' in response.text
    assert 'name="memberships-0-role"' in response.text


def test_paid_invoice_amounts_are_read_only(admin_client, customer):
    invoice = factories.make_invoice(customer, status=InvoiceStatus.PAID)
    response = admin_client.get(admin_url(Invoice, "change", invoice.pk))
    assert 'name="amount_paid"' not in response.text
    assert 'name="total"' not in response.text
    assert "$20.00" in response.text


def test_draft_invoice_amounts_are_editable(admin_client, customer):
    invoice = factories.make_invoice(customer, status=InvoiceStatus.DRAFT)
    response = admin_client.get(admin_url(Invoice, "change", invoice.pk))
    assert 'name="total"' in response.text
    assert 'name="lines-0-amount"' in response.text


def test_finalized_invoice_lines_are_read_only(admin_client, customer):
    invoice = factories.make_invoice(customer, status=InvoiceStatus.OPEN)
    response = admin_client.get(admin_url(Invoice, "change", invoice.pk))
    assert 'name="lines-0-amount"' not in response.text
    assert "Pro plan" in response.text


def test_customer_page_lists_payment_methods_by_last4(admin_client, customer):
    factories.make_card(customer, card_last4="1881")
    response = admin_client.get(admin_url(Customer, "change", customer.pk))
    assert "1881" in response.text


def test_item_added_inline_takes_the_subscription_account_and_mode(admin_request, account):
    customer = factories.make_customer(account, livemode=True)
    subscription = factories.make_subscription(customer)
    price = factories.make_price(account, livemode=True, unit_amount=500)
    subscription_admin = admin.site._registry[Subscription]
    [formset_class] = [
        formset
        for formset, inline in subscription_admin.get_formsets_with_inlines(
            admin_request, subscription
        )
        if isinstance(inline, SubscriptionItemInline)
    ]
    prefix = formset_class.get_default_prefix()
    formset = formset_class(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-0-price": price.pk,
            f"{prefix}-0-quantity": "3",
        },
        instance=subscription,
        prefix=prefix,
    )
    assert formset.is_valid(), formset.errors
    [item] = formset.save()
    item.refresh_from_db()
    assert (item.account, item.livemode, item.quantity) == (account, True, 3)


def test_user_page_lists_the_user_memberships(admin_client, account):
    user = factories.make_member(account, email="support@acme.test", role=Role.SUPPORT)
    response = admin_client.get(admin_url(type(user), "change", user.pk))
    assert response.status_code == 200
    assert 'name="memberships-0-role"' in response.text
    assert Membership.objects.get(user=user).account.name in response.text


def test_every_builder_builds_its_model(account):
    # Guards the table above: a builder returning the wrong kind of object tests nothing.
    for model in BUILDERS:
        assert isinstance(build(model, account), model)


@pytest.mark.parametrize("model", [Customer, Subscription, Invoice], ids=lambda m: m.__name__)
def test_changelist_of_twenty_rows_stays_within_a_fixed_query_budget(
    admin_client, account, model, django_assert_max_num_queries
):
    for i in range(20):
        build(model, account, i)
    with django_assert_max_num_queries(8):
        assert admin_client.get(admin_url(model, "changelist")).status_code == 200


# ---------------------------------------------------------------------------------------------
# New pages: account numbering, invoice items, due jobs, recovery settings


def test_account_page_shows_invoice_sequences_read_only(admin_client, account):
    Account.objects.filter(pk=account.pk).update(invoice_sequence_test=41, invoice_sequence_live=7)
    response = admin_client.get(admin_url(Account, "change", account.pk))
    assert 'name="invoice_sequence_test"' not in response.text
    assert 'name="invoice_sequence_live"' not in response.text
    assert "41" in response.text


def test_pending_invoice_item_is_editable(admin_client, customer):
    item = factories.make_invoice_item(customer)
    response = admin_client.get(admin_url(InvoiceItem, "change", item.pk))
    assert 'name="amount"' in response.text


def test_invoice_item_on_a_finalized_invoice_is_read_only(admin_client, customer):
    invoice = factories.make_invoice(customer, status=InvoiceStatus.OPEN)
    item = factories.make_invoice_item(customer, invoice=invoice)
    response = admin_client.get(admin_url(InvoiceItem, "change", item.pk))
    assert 'name="amount"' not in response.text
    assert admin_url(Invoice, "change", invoice.pk) in response.text


def test_due_job_links_to_its_target_and_shows_the_error_excerpt(admin_client, customer):
    subscription = factories.make_subscription(customer)
    factories.make_due_job(
        subscription,
        last_error='Traceback (most recent call last):\n  File "x.py"\nValueError: boom\n',
    )
    response = admin_client.get(admin_url(DueJob, "changelist"))
    assert admin_url(Subscription, "change", subscription.pk) in response.text
    assert "ValueError: boom" in response.text
    assert "Traceback" not in response.text


def test_due_job_kind_filter_offers_the_registered_kinds(admin_client, customer):
    subscription = factories.make_subscription(customer)
    renewal = factories.make_due_job(subscription, kind="renewal")
    trial_end = factories.make_due_job(subscription, kind="trial_end")
    response = admin_client.get(admin_url(DueJob, "changelist"), {"kind": "trial_end"})
    assert "?kind=payment_retry" in response.text
    assert admin_url(DueJob, "change", trial_end.pk) in response.text
    assert admin_url(DueJob, "change", renewal.pk) not in response.text


def test_due_job_admin_is_view_only(admin_request, customer):
    job = factories.make_due_job(factories.make_subscription(customer))
    job_admin = admin.site._registry[DueJob]
    assert job_admin.has_add_permission(admin_request) is False
    assert job_admin.has_change_permission(admin_request, job) is False
    assert job_admin.has_delete_permission(admin_request, job) is False
    assert "run_now" in job_admin.get_actions(admin_request)


def _recovery_form(account, **overrides):
    data = {
        "account": account.pk,
        "retry_mode": RetryMode.CUSTOM,
        "retry_days": "[2, 3]",
        "after_retries_subscription": "cancel",
        "after_retries_invoice": "open",
        "upcoming_renewal_days": "7",
    }
    return {**data, **overrides}


def test_recovery_settings_are_saved_with_a_custom_schedule(admin_client, account):
    response = admin_client.post(admin_url(RecoverySettings, "add"), _recovery_form(account))
    assert response.status_code == 302
    settings = RecoverySettings.objects.get(account=account, livemode=False)
    assert settings.retry_schedule == (2, 3)


@pytest.mark.parametrize(
    "retry_days",
    ['["2"]', "[0]", "[1, 1, 1, 1, 1, 1, 1, 1]", '{"days": 2}', "[]"],
    ids=["strings", "zero", "nine-attempts", "not-a-list", "empty-custom"],
)
def test_recovery_settings_refuse_a_bad_retry_schedule(admin_client, account, retry_days):
    response = admin_client.post(
        admin_url(RecoverySettings, "add"), _recovery_form(account, retry_days=retry_days)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["retry_days"]
    assert not RecoverySettings.objects.exists()


# ---------------------------------------------------------------------------------------------
# Support actions, on objects built through the services

GOOD_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000002"


def _paying_customer(account, number=GOOD_CARD, email="payer@example.com"):
    """A customer whose default payment method is a test card with `number`."""
    customer = factories.make_customer(account, email=email)
    _set_card(customer, number)
    return customer


def _set_card(customer, number):
    card = {"number": number, "exp_month": 12, "exp_year": timezone.now().year + 3}
    return add_card(customer, card=card, set_default=True)


def _subscribe(customer):
    price = factories.make_price(customer.account)
    return create_subscription(customer, items=[{"price": price}])


def _declined_first_invoice(account, email="declined@example.com"):
    """A subscription left incomplete by a declined first payment, and its open invoice."""
    subscription = _subscribe(_paying_customer(account, DECLINING_CARD, email=email))
    invoice = subscription.latest_invoice
    assert (subscription.status, invoice.status) == (SubscriptionStatus.INCOMPLETE, "open")
    return subscription, invoice


def run_action(client, model, action, objects):
    """Post `action` on `objects` from the changelist; the (level, text) messages it reported."""
    response = client.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
    )
    assert response.status_code == 302
    reported = [(message.level, message.message) for message in get_messages(response.wsgi_request)]
    # Show the messages once (as the redirect would), so a later action reports only its own.
    client.get(response.url)
    return reported


def test_retry_payment_pays_the_invoice_once_the_customer_has_a_working_card(admin_client, account):
    subscription, invoice = _declined_first_invoice(account)
    _set_card(subscription.customer, GOOD_CARD)

    reported = run_action(admin_client, Invoice, "retry_payment", [invoice])

    assert reported == [(messages.SUCCESS, f"{invoice.number}: paid.")]
    invoice.refresh_from_db()
    subscription.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_declined_retry_reports_the_decline_and_leaves_the_invoice_open(admin_client, account):
    _, invoice = _declined_first_invoice(account)

    reported = run_action(admin_client, Invoice, "retry_payment", [invoice])

    assert reported == [
        (messages.ERROR, f"{invoice.number}: payment declined: Your card was declined.")
    ]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_retry_payment_reports_each_invoice_on_its_own(admin_client, account):
    paid = _subscribe(_paying_customer(account)).latest_invoice
    _, declined = _declined_first_invoice(account)

    reported = run_action(admin_client, Invoice, "retry_payment", [paid, declined])

    assert sorted(reported) == sorted(
        [
            (messages.ERROR, f"{paid.number}: This invoice is paid: it cannot be paid."),
            (messages.ERROR, f"{declined.number}: payment declined: Your card was declined."),
        ]
    )
    paid.refresh_from_db()
    assert paid.status == InvoiceStatus.PAID


def test_void_invoice_voids_open_invoices_and_refuses_paid_ones(admin_client, account):
    paid = _subscribe(_paying_customer(account)).latest_invoice
    _, open_invoice = _declined_first_invoice(account)

    reported = run_action(admin_client, Invoice, "void", [paid, open_invoice])

    assert sorted(reported) == sorted(
        [
            (messages.SUCCESS, f"{open_invoice.number}: voided."),
            (
                messages.ERROR,
                f"{paid.number}: Only open or uncollectible invoices can be voided; "
                "this one is paid.",
            ),
        ]
    )
    open_invoice.refresh_from_db()
    paid.refresh_from_db()
    assert (open_invoice.status, paid.status) == (InvoiceStatus.VOID, InvoiceStatus.PAID)


def test_cancel_subscription_now_cancels_it(admin_client, account):
    subscription = _subscribe(_paying_customer(account))

    reported = run_action(admin_client, Subscription, "cancel_now", [subscription])

    assert reported == [(messages.SUCCESS, f"{subscription.pk}: canceled.")]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELED
    assert not DueJob.objects.filter(target_id=subscription.pk, status=JobStatus.PENDING).exists()


def test_cancel_subscription_now_reports_one_already_canceled(admin_client, account):
    subscription = _subscribe(_paying_customer(account))
    run_action(admin_client, Subscription, "cancel_now", [subscription])

    reported = run_action(admin_client, Subscription, "cancel_now", [subscription])

    assert reported == [
        (messages.ERROR, f"{subscription.pk}: This subscription is already canceled.")
    ]


def test_cancel_at_period_end_keeps_the_subscription_active_until_then(admin_client, account):
    subscription = _subscribe(_paying_customer(account))

    [(level, text)] = run_action(admin_client, Subscription, "cancel_at_period_end", [subscription])

    assert level == messages.SUCCESS
    assert text.startswith(f"{subscription.pk}: cancels at the end of its period")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.cancel_at_period_end is True
    assert subscription.cancel_at == subscription.current_period_end


def test_cancel_at_period_end_twice_keeps_the_first_request(admin_client, account):
    subscription = _subscribe(_paying_customer(account))
    run_action(admin_client, Subscription, "cancel_at_period_end", [subscription])
    subscription.refresh_from_db()
    asked_at = subscription.canceled_at

    reported = run_action(admin_client, Subscription, "cancel_at_period_end", [subscription])

    assert reported[0][0] == messages.INFO
    subscription.refresh_from_db()
    assert subscription.canceled_at == asked_at


def test_run_now_runs_a_pending_renewal(admin_client, account):
    subscription = _subscribe(_paying_customer(account))
    job = DueJob.objects.get(target_id=subscription.pk, kind="renewal", status=JobStatus.PENDING)

    reported = run_action(admin_client, DueJob, "run_now", [job])

    assert reported == [(messages.SUCCESS, f"{job}: ran.")]
    job.refresh_from_db()
    subscription.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert subscription.latest_invoice.billing_reason == BillingReason.SUBSCRIPTION_CYCLE


def test_run_now_leaves_test_clock_jobs_to_their_clock(admin_client, account):
    clock = factories.make_test_clock(account)
    customer = factories.make_customer(account, test_clock=clock)
    _set_card(customer, GOOD_CARD)
    subscription = _subscribe(customer)
    job = DueJob.objects.get(target_id=subscription.pk, kind="renewal", status=JobStatus.PENDING)

    reported = run_action(admin_client, DueJob, "run_now", [job])

    assert reported == [
        (messages.WARNING, f"{job}: not run: it runs when its test clock is advanced.")
    ]
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING


def test_run_now_reports_a_failing_job_and_runs_the_others(admin_client, account):
    subscription = _subscribe(_paying_customer(account))
    renewal = DueJob.objects.get(target_id=subscription.pk, kind="renewal", status="pending")
    # A job of a kind no handler knows any more (say, one removed by a deploy).
    orphan = factories.make_due_job(subscription, kind="retired_kind")

    reported = run_action(admin_client, DueJob, "run_now", [renewal, orphan])

    assert sorted(reported) == sorted(
        [
            (messages.SUCCESS, f"{renewal}: ran."),
            (messages.ERROR, f"{orphan}: failed: unknown job kind 'retired_kind'"),
        ]
    )
    orphan.refresh_from_db()
    assert (orphan.status, orphan.attempts) == (JobStatus.PENDING, 1)
    assert "unknown job kind" in orphan.last_error


def test_run_now_skips_finished_jobs(admin_client, customer):
    job = factories.make_due_job(factories.make_subscription(customer), status=JobStatus.DONE)

    reported = run_action(admin_client, DueJob, "run_now", [job])

    assert reported == [(messages.INFO, f"{job}: not run: it is done.")]


def test_an_admin_change_writes_only_what_the_form_changed(admin_request, account):
    # SPEC R-INV-3: the page was read before a finalization moved the customer's sequence;
    # saving it must not put the old sequence back (the next invoice would take a number
    # already given).
    from billing.services import invoices as invoicing

    customer = factories.make_customer(account, name="Before")
    stale = Customer.objects.get(pk=customer.pk)
    invoicing.create_invoice_item(customer, amount=500, currency="usd")
    invoicing.finalize_invoice(invoicing.create_manual_invoice(customer), collect=False)
    model_admin = admin.site._registry[Customer]
    form_class = model_admin.get_form(admin_request, stale, fields=["name"])
    form = form_class(data={"name": "After"}, instance=stale)
    assert form.is_valid(), form.errors
    model_admin.save_model(admin_request, form.save(commit=False), form, change=True)
    customer.refresh_from_db()
    assert (customer.name, customer.next_invoice_sequence) == ("After", 2)
