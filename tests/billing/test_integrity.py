"""Objects of one account and mode never link to another account's or mode's (SPEC R-CORE-3).

The support admin refuses such links on save, naming the field, and its pickers offer only the
object's own account and mode. The services refuse them too.
"""

import json
from urllib.parse import parse_qsl

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.admin import (
    ScopedAutocompleteSelect,
    ScopedRawIdWidget,
    SubscriptionItemInline,
    is_mode_scoped,
)
from billing.models import Customer, PaymentMethod, Subscription, SubscriptionItem, TestClock
from billing.services.customers import (
    attach_payment_method,
    create_customer,
    update_customer,
)
from tests import factories
from tests.billing.test_admin import REGISTERED, build


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_request(rf, admin_user):
    request = rf.get("/admin/")
    request.user = admin_user
    return request


def change_url(obj):
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])


def single_field_form(request, obj, name, value):
    """The admin's change form of `obj` reduced to one field, bound to `value`."""
    model_admin = admin.site._registry[type(obj)]
    form_class = model_admin.get_form(request, obj, fields=[name])
    return form_class(data={name: value}, instance=obj)


def _item_post(item, **overrides):
    data = {
        "account": item.account_id,
        "subscription": item.subscription_id,
        "price": item.price_id,
        "quantity": "2",
        "metadata": "{}",
        **({"livemode": "on"} if item.livemode else {}),
    }
    return {**data, **overrides}


# --- the admin: every foreign key to an account-and-mode object ------------------------------


SCOPED_MODELS = [model for model in REGISTERED if is_mode_scoped(model)]


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_admin_refuses_every_link_to_another_accounts_object_naming_the_field(
    admin_request, account, other_account, model
):
    # SPEC R-CORE-3
    obj = build(model, account)
    model_admin = admin.site._registry[model]
    if not model_admin.has_change_permission(admin_request, obj):
        pytest.skip("view-only in the admin")
    form_class = model_admin.get_form(admin_request, obj)
    checked = 0
    for index, name in enumerate(form_class.base_fields, start=1):
        model_field = model._meta.get_field(name)
        if name == "account" or not model_field.many_to_one:
            continue
        if not is_mode_scoped(model_field.related_model):
            continue
        foreign = build(model_field.related_model, other_account, 100 + index)
        form = single_field_form(admin_request, obj, name, foreign.pk)
        assert not form.is_valid()
        [message] = form.errors[name]
        assert str(foreign.pk) in message and "belongs to account" in message, message
        assert str(form.fields[name].label).lower() in message.lower()
        checked += 1
    scoped_fks = [
        field.name
        for field in model._meta.concrete_fields
        if field.many_to_one
        and field.name != "account"
        and field.name in form_class.base_fields
        and is_mode_scoped(field.related_model)
    ]
    assert checked == len(scoped_fks)


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_admin_refuses_every_link_to_the_other_modes_object_naming_the_field(
    admin_request, account, model
):
    # SPEC R-CORE-3
    obj = build(model, account)
    model_admin = admin.site._registry[model]
    if not model_admin.has_change_permission(admin_request, obj):
        pytest.skip("view-only in the admin")
    form_class = model_admin.get_form(admin_request, obj)
    for index, name in enumerate(form_class.base_fields, start=1):
        model_field = model._meta.get_field(name)
        if name == "account" or not model_field.many_to_one:
            continue
        related = model_field.related_model
        if not is_mode_scoped(related) or related is TestClock:
            continue  # (test clocks exist in test mode only: see the live customer's test)
        other_mode = build(related, account, 200 + index)
        related.objects.filter(pk=other_mode.pk).update(livemode=not obj.livemode)
        form = single_field_form(admin_request, obj, name, other_mode.pk)
        assert not form.is_valid()
        [message] = form.errors[name]
        assert str(other_mode.pk) in message and "live mode object" in message, message


def test_admin_refuses_a_subscription_item_price_of_another_account(
    admin_client, account, other_account
):
    # SPEC R-CORE-3
    item = factories.make_subscription(factories.make_customer(account)).items.get()
    foreign_price = factories.make_price(other_account)
    response = admin_client.post(change_url(item), _item_post(item, price=foreign_price.pk))
    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["price"]
    assert message.startswith(f"Price {foreign_price.pk} belongs to account {other_account.pk}")
    item.refresh_from_db()
    assert item.price.account_id == account.pk and item.quantity == 1


def test_admin_refuses_a_subscription_item_price_of_the_other_mode(admin_client, account):
    # SPEC R-CORE-3
    item = factories.make_subscription(factories.make_customer(account)).items.get()
    live_price = factories.make_price(account, livemode=True)
    response = admin_client.post(change_url(item), _item_post(item, price=live_price.pk))
    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["price"]
    assert message == (
        f"Price {live_price.pk} is a live mode object; this subscription item is in test mode."
    )


def test_admin_saves_a_subscription_item_price_of_the_same_account_and_mode(admin_client, account):
    item = factories.make_subscription(factories.make_customer(account)).items.get()
    price = factories.make_price(account, unit_amount=900)
    response = admin_client.post(change_url(item), _item_post(item, price=price.pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    item.refresh_from_db()
    assert (item.price_id, item.quantity) == (price.pk, 2)


def test_admin_refuses_to_move_an_existing_object_to_another_account_or_mode(
    admin_client, account, other_account
):
    # SPEC R-CORE-3: its subscription, invoices and cards would be left in the old ones.
    item = factories.make_subscription(factories.make_customer(account)).items.get()
    response = admin_client.post(
        change_url(item), _item_post(item, account=other_account.pk, livemode="on")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "cannot change" in errors["account"][0]
    assert "cannot change" in errors["livemode"][0]
    item.refresh_from_db()
    assert (item.account_id, item.livemode) == (account.pk, False)


def test_admin_refuses_a_new_subscription_for_a_customer_of_another_account(
    admin_request, account, other_account
):
    # SPEC R-CORE-3: on a new object, the account chosen on the form is the one that counts.
    foreign_customer = factories.make_customer(other_account)
    form_class = admin.site._registry[Subscription].get_form(
        admin_request, None, fields=["account", "livemode", "customer"]
    )
    form = form_class(data={"account": account.pk, "customer": foreign_customer.pk})
    assert not form.is_valid()
    [message] = form.errors["customer"]
    assert f"Customer {foreign_customer.pk} belongs to account {other_account.pk}" in message
    form = form_class(data={"account": other_account.pk, "customer": foreign_customer.pk})
    assert form.is_valid(), form.errors


def test_admin_refuses_another_customers_card_as_a_subscriptions_default(admin_request, account):
    # A card of the same account and mode, but someone else's: the subscription cannot charge it.
    subscription = factories.make_subscription(factories.make_customer(account))
    stranger = factories.make_customer(account, email="stranger@example.com")
    card = factories.make_card(stranger)
    form = single_field_form(admin_request, subscription, "default_payment_method", card.pk)
    assert not form.is_valid()
    [message] = form.errors["default_payment_method"]
    assert card.pk in message and stranger.pk in message and subscription.customer_id in message
    own_card = factories.make_card(subscription.customer)
    form = single_field_form(admin_request, subscription, "default_payment_method", own_card.pk)
    assert form.is_valid(), form.errors


def test_admin_refuses_another_customers_card_as_a_customers_default(admin_request, account):
    customer = factories.make_customer(account)
    card = factories.make_card(factories.make_customer(account, email="other@example.com"))
    form = single_field_form(
        admin_request, customer, "invoice_settings_default_payment_method", card.pk
    )
    assert not form.is_valid()
    assert card.pk in form.errors["invoice_settings_default_payment_method"][0]


def test_admin_refuses_a_test_clock_for_a_live_customer(admin_request, account):
    # SPEC R-CLOCK-1: test clocks are test mode only.
    customer = factories.make_customer(account, livemode=True)
    clock = factories.make_test_clock(account)
    form = single_field_form(admin_request, customer, "test_clock", clock.pk)
    assert not form.is_valid()
    [message] = form.errors["test_clock"]
    assert message == f"Test clock {clock.pk} is a test mode object; this customer is in live mode."


def test_admin_inline_refuses_a_price_of_another_account(admin_request, account, other_account):
    # SPEC R-CORE-3
    subscription = factories.make_subscription(factories.make_customer(account))
    foreign_price = factories.make_price(other_account, unit_amount=500)
    [formset_class] = [
        formset
        for formset, inline in admin.site._registry[Subscription].get_formsets_with_inlines(
            admin_request, subscription
        )
        if isinstance(inline, SubscriptionItemInline)
    ]
    prefix = formset_class.get_default_prefix()
    formset = formset_class(
        {
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-0-price": foreign_price.pk,
            f"{prefix}-0-quantity": "1",
        },
        instance=subscription,
        prefix=prefix,
    )
    assert not formset.is_valid()
    assert foreign_price.pk in formset.forms[0].errors["price"][0]
    assert SubscriptionItem.objects.filter(subscription=subscription).count() == 1


# --- the admin's pickers ------------------------------------------------------------------------


def test_admin_autocomplete_on_an_existing_object_offers_its_account_and_mode_only(
    admin_client, admin_request, account, other_account
):
    # SPEC R-CORE-3
    item = factories.make_subscription(factories.make_customer(account)).items.get()
    own = factories.make_price(account, product_name="Gold")
    factories.make_price(account, livemode=True, product_name="Gold")
    factories.make_price(other_account, product_name="Gold")
    form = admin.site._registry[SubscriptionItem].get_form(admin_request, item)(instance=item)
    widget = form.fields["price"].widget.widget
    assert isinstance(widget, ScopedAutocompleteSelect)
    url = widget.build_attrs({})["data-ajax--url"]
    assert f"scope_account={account.pk}" in url and "scope_livemode=0" in url
    # select2 adds its parameters to the widget's URL, which already holds the scope.
    path, _, query = url.partition("?")
    response = admin_client.get(
        path,
        {
            **dict(parse_qsl(query)),
            "term": "Gold",
            "app_label": "billing",
            "model_name": "subscriptionitem",
            "field_name": "price",
        },
    )
    assert response.status_code == 200
    assert [row["id"] for row in json.loads(response.content)["results"]] == [own.pk]


def test_admin_autocomplete_on_a_new_object_is_not_narrowed(admin_request):
    # The account is chosen on the same form: the save is what checks it.
    form = admin.site._registry[SubscriptionItem].get_form(admin_request, None)()
    widget = form.fields["price"].widget.widget
    assert "scope_account" not in widget.build_attrs({})["data-ajax--url"]


def test_admin_raw_id_lookup_on_an_existing_object_lists_its_account_and_mode_only(
    admin_client, admin_request, account, other_account
):
    # SPEC R-CORE-3
    subscription = factories.make_subscription(factories.make_customer(account))
    own_card = factories.make_card(subscription.customer)
    live_card = factories.make_card(factories.make_customer(account, livemode=True))
    foreign_card = factories.make_card(factories.make_customer(other_account))
    form = admin.site._registry[Subscription].get_form(admin_request, subscription)(
        instance=subscription
    )
    widget = form.fields["default_payment_method"].widget
    assert isinstance(widget, ScopedRawIdWidget)
    params = widget.url_parameters()
    assert params["account__exact"] == account.pk and params["livemode__exact"] == 0
    url = reverse("admin:billing_paymentmethod_changelist")
    response = admin_client.get(url, {**params, "_popup": "1"})
    assert response.status_code == 200
    listed = {obj.pk for obj in response.context["cl"].result_list}
    assert own_card.pk in listed
    assert live_card.pk not in listed and foreign_card.pk not in listed


def test_admin_inline_rows_pick_from_the_parents_account_and_mode(admin_request, account):
    subscription = factories.make_subscription(factories.make_customer(account, livemode=True))
    [formset_class] = [
        formset
        for formset, inline in admin.site._registry[Subscription].get_formsets_with_inlines(
            admin_request, subscription
        )
        if isinstance(inline, SubscriptionItemInline)
    ]
    formset = formset_class(instance=subscription)
    for form in [*formset.forms, formset.empty_form]:
        url = form.fields["price"].widget.widget.build_attrs({})["data-ajax--url"]
        assert f"scope_account={account.pk}" in url and "scope_livemode=1" in url


# --- services -----------------------------------------------------------------------------------


def test_a_customer_cannot_join_another_accounts_test_clock(account, other_account):
    # SPEC R-CORE-3, R-CLOCK-1
    clock = factories.make_test_clock(other_account)
    with pytest.raises(ValidationError) as error:
        create_customer(account, livemode=False, test_clock=clock)
    assert list(error.value.message_dict) == ["test_clock"]
    assert not Customer.objects.filter(account=account).exists()


def test_a_live_customer_cannot_join_a_test_clock(account):
    # SPEC R-CLOCK-1
    clock = factories.make_test_clock(account)
    with pytest.raises(ValidationError) as error:
        create_customer(account, livemode=True, test_clock=clock)
    assert list(error.value.message_dict) == ["test_clock"]


@pytest.mark.parametrize("where", ["other_account", "other_mode"])
def test_a_card_of_another_account_or_mode_cannot_be_attached(account, other_account, where):
    # SPEC R-CORE-3
    customer = factories.make_customer(account)
    scope = {"account": other_account, "livemode": False}
    if where == "other_mode":
        scope = {"account": account, "livemode": True}
    card = PaymentMethod.objects.create(
        **scope, card_last4="4242", card_exp_month=12, card_exp_year=2040
    )
    with pytest.raises(ValidationError) as error:
        attach_payment_method(card, customer=customer)
    assert list(error.value.message_dict) == ["payment_method"]
    card.refresh_from_db()
    assert card.customer_id is None


def test_another_accounts_card_cannot_become_a_customers_default(account, other_account):
    # SPEC R-CORE-3
    customer = factories.make_customer(account)
    foreign_card = factories.make_card(factories.make_customer(other_account))
    with pytest.raises(ValidationError) as error:
        update_customer(customer, invoice_settings_default_payment_method=foreign_card)
    assert list(error.value.message_dict) == ["invoice_settings[default_payment_method]"]
    customer.refresh_from_db()
    assert customer.invoice_settings_default_payment_method_id is None


def test_a_coupon_of_the_other_mode_cannot_discount_a_new_subscription(account):
    # SPEC R-CORE-3
    from billing.models import Subscription as Sub
    from billing.services.subscriptions import create_subscription

    customer = factories.make_customer(account)
    factories.make_card(customer)
    live_coupon = factories.make_coupon(account, code="LIVE50", livemode=True, percent_off=50)
    with pytest.raises(ValidationError) as error:
        create_subscription(
            customer, items=[{"price": factories.make_price(account)}], coupon=live_coupon
        )
    assert list(error.value.message_dict) == ["coupon"]
    assert not Sub.objects.filter(customer=customer).exists()


def test_an_invoice_item_cannot_name_another_customers_subscription(account):
    # SPEC R-CORE-3
    from billing.models import InvoiceItem
    from billing.services.invoices import create_invoice_item

    customer = factories.make_customer(account)
    someone_elses = factories.make_subscription(factories.make_customer(account, email="x@y.z"))
    with pytest.raises(ValidationError) as error:
        create_invoice_item(customer, amount=500, currency="usd", subscription=someone_elses)
    assert list(error.value.message_dict) == ["subscription"]
    assert not InvoiceItem.objects.filter(customer=customer).exists()
