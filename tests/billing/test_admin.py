"""The support admin: every billing model loads, links, searches and stays cheap to list."""

import json

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, quote
from django.contrib.admin.widgets import AutocompleteSelect, ForeignKeyRawIdWidget
from django.db import connection
from django.forms import ModelChoiceField
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from billing.admin import BillingAdmin, SubscriptionItemInline
from billing.choices import InvoiceStatus, Role
from billing.models import (
    Account,
    ApiKey,
    Coupon,
    Customer,
    CustomerBalanceTransaction,
    Discount,
    Event,
    ExchangeRate,
    Invoice,
    InvoiceLineItem,
    Membership,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    TestClock,
)
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


# One saved object of each model, the i-th of its kind (so unique fields stay unique).
BUILDERS = {
    Account: lambda account, i: factories.make_connected_account(account, name=f"Shop {i}"),
    ApiKey: lambda account, i: factories.make_api_key(account, name=f"Key {i}"),
    Coupon: lambda account, i: factories.make_coupon(account, code=f"SPRING{i}"),
    Customer: _customer,
    CustomerBalanceTransaction: lambda account, i: factories.make_balance_transaction(
        _customer(account, i)
    ),
    Discount: _discount,
    Event: lambda account, i: factories.make_event(account, obj=_customer(account, i)),
    ExchangeRate: lambda account, i: factories.make_exchange_rate(
        factories.make_account(f"Rates {i}")
    ),
    Invoice: _invoice,
    InvoiceLineItem: lambda account, i: _invoice(account, i).lines.get(),
    Membership: lambda account, i: factories.make_member(
        account, email=f"member{i}@example.com"
    ).memberships.get(),
    PaymentIntent: lambda account, i: factories.make_payment_intent(_invoice(account, i)),
    PaymentMethod: lambda account, i: factories.make_card(_customer(account, i)),
    Price: lambda account, i: factories.make_price(account),
    Product: lambda account, i: factories.make_price(account).product,
    Subscription: lambda account, i: factories.make_subscription(_customer(account, i)),
    SubscriptionItem: lambda account, i: factories.make_subscription(
        _customer(account, i)
    ).items.get(),
    TestClock: lambda account, i: factories.make_test_clock(account, name=f"Clock {i}"),
}

# Model fields deliberately kept off change pages.
HIDDEN_FIELDS = {
    ApiKey: {"key_hash", "last4"},  # the hash never; last4 only inside the redacted key
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
