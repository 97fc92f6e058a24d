"""The Django admin for support staff: every billing object, searchable, linked, never slow.

Every list shows related objects as links to their own change pages, selects them in the same
query (`list_select_related`), and skips the full `COUNT(*)` (`show_full_result_count`), so a
page costs the same number of queries with 20 rows or 20 million. Foreign keys are edited with
raw-id or autocomplete widgets, never a `<select>` of every customer. What the engine derives
(ids, timestamps, balances, finalized amounts, the event log) is read-only here: state changes
that matter go through services, and the admin actions below call those: retry a payment, void
an invoice, cancel a subscription, run a due job now, disconnect or reconnect a connected
account. An action reports each selected object's outcome on its own line, so one failure
never hides the others (and never becomes a 500).
"""

import json
import logging
from functools import cache
from urllib.parse import urlencode

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.admin.widgets import AutocompleteSelect, ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from billing import timeline
from billing.choices import AccountType, InvoiceStatus, JobStatus, PaymentIntentStatus
from billing.ids import IdFactory
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
from billing.models.base import ModeScoped
from billing.money import format_amount
from billing.services import connect as connect_services
from billing.services import invoices as invoice_services
from billing.services import subscriptions as subscription_services
from billing.services import webhooks as webhook_services

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Links and formatted columns


def change_url(model, pk) -> str:
    """The admin change page of the `model` row with primary key `pk`."""
    opts = model._meta
    # The admin escapes "_" in primary keys in its URLs, and every Stripe id has one.
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])


def admin_link(obj, label=None):
    """A link to `obj`'s admin change page, labelled `label` or `str(obj)`; None shows "-"."""
    if obj is None:
        return None
    return format_html(
        '<a href="{}">{}</a>', change_url(type(obj), obj.pk), obj if label is None else label
    )


@cache
def _models_by_id_prefix() -> dict:
    # Every billing object's id starts with its model's prefix (`cus_…`), so an id alone is
    # enough to find its admin page: events store the ids of the objects they are about.
    found = {}
    for model in apps.get_app_config("billing").get_models():
        default = model._meta.pk.default
        if isinstance(default, IdFactory):
            found[default.prefix] = model
    return found


def id_link(object_id: str):
    """A link to the admin page of the billing object with this Stripe id, else the bare id."""
    if not object_id:
        return None
    model = _models_by_id_prefix().get(object_id.partition("_")[0])
    if model is None or not admin.site.is_registered(model):
        return object_id
    return format_html('<a href="{}">{}</a>', change_url(model, object_id), object_id)


def format_money(amount, currency: str):
    """`format_amount`, tolerating the null amounts and blank currencies some models allow."""
    if amount is None:
        return None
    if not currency:
        return f"{amount:,}"
    return format_amount(amount, currency)


def amount_column(field: str, description: str | None = None, currency_of=None):
    """A list/readonly column showing integer `field` as money in the object's currency."""

    @admin.display(description=description or field.replace("_", " ").capitalize(), ordering=field)
    def column(obj):
        currency = currency_of(obj) if currency_of else obj.currency
        return format_money(getattr(obj, field), currency)

    column.__name__ = f"{field}_formatted"
    return column


def link_column(field: str, description: str | None = None, ordering: str | None = None):
    """A list/readonly column linking to the object in foreign key `field`."""

    @admin.display(
        description=description or field.replace("_", " ").capitalize(),
        ordering=ordering or field,
    )
    def column(obj):
        return admin_link(getattr(obj, field))

    column.__name__ = f"{field}_link"
    return column


account_link = link_column("account", ordering="account__name")
customer_link = link_column("customer", ordering="customer__email")


# ---------------------------------------------------------------------------------------------
# Actions: each selected object goes through one service call, and gets its own message.


def error_text(error: Exception) -> str:
    """What a service refused, in words: a ValidationError's messages, else the exception's."""
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or type(error).__name__


def for_each(model_admin, request, objects, act) -> None:
    """Call `act(obj)` for every object and report each outcome with `message_user`.

    `act` returns `(level, text)` for the object. A service's ValidationError is reported as
    an error on that object; anything unexpected is logged and reported the same way, so one
    object's failure leaves the others' outcomes (and the page) intact. Services run in their
    own transaction, so a failed one has written nothing.
    """
    for obj in objects:
        try:
            level, text = act(obj)
        except ValidationError as error:
            level, text = messages.ERROR, error_text(error)
        except Exception as error:
            log.exception("admin action on %s %s failed", type(obj).__name__, obj.pk)
            level, text = messages.ERROR, f"failed: {error_text(error)}"
        model_admin.message_user(request, f"{obj}: {text}", level=level)


# ---------------------------------------------------------------------------------------------
# One account, one mode: links between objects never cross either (SPEC R-CORE-3)

# Query parameters a scoped autocomplete widget adds to its search requests.
SCOPE_ACCOUNT_PARAM = "scope_account"
SCOPE_LIVEMODE_PARAM = "scope_livemode"


def is_mode_scoped(model) -> bool:
    """Whether each row of `model` belongs to one account and one mode (`account`, `livemode`)."""
    names = {field.name for field in model._meta.concrete_fields}
    return {"account", "livemode"} <= names


def _mode_name(livemode: bool) -> str:
    return "live mode" if livemode else "test mode"


def _label(form, name: str) -> str:
    field = form.fields.get(name)
    label = field.label if field is not None and field.label else name.replace("_", " ")
    return str(label)[:1].upper() + str(label)[1:]


class ScopedAutocompleteSelect(AutocompleteSelect):
    """An autocomplete that offers only the objects of `scope` (account and mode) once known."""

    scope: dict | None = None

    def get_url(self):
        url = super().get_url()
        if self.scope:
            url += "?" + urlencode(
                {
                    SCOPE_ACCOUNT_PARAM: self.scope["account"],
                    SCOPE_LIVEMODE_PARAM: int(self.scope["livemode"]),
                }
            )
        return url


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id input whose lookup popup lists only the objects of `scope` once known."""

    scope: dict | None = None

    def url_parameters(self):
        params = super().url_parameters()
        if self.scope:
            # Lookups on the model's own fields, which the changelist always allows.
            params["account__exact"] = self.scope["account"]
            params["livemode__exact"] = int(self.scope["livemode"])
        return params


def narrow_choices(form) -> None:
    """Point the form's autocomplete and raw-id pickers at its object's account and mode.

    Only once that scope is settled: an existing object (whose account and mode never change
    here) or a new inline row (which takes its parent's). The form's `clean` is what enforces it.
    """
    instance = form.instance
    if not is_mode_scoped(type(instance)) or not instance.account_id:
        return
    if instance._state.adding and ("account" in form.fields or "livemode" in form.fields):
        return
    scope = {"account": instance.account_id, "livemode": bool(instance.livemode)}
    for field in form.fields.values():
        # Only foreign keys to scoped models get these widgets (ScopedLinksMixin).
        widget = getattr(field.widget, "widget", field.widget)  # inside the "+" wrapper
        if isinstance(widget, ScopedAutocompleteSelect | ScopedRawIdWidget):
            widget.scope = scope


def field_names(obj) -> set[str]:
    """The names of the concrete fields of `obj`'s model."""
    return {field.name for field in type(obj)._meta.concrete_fields}


class ScopedModelForm(forms.ModelForm):
    """The admin's model form: refuses to link an object to another account's or mode's objects.

    Every foreign key on the form to a model with `account` and `livemode` must point at an object
    of this object's own account and mode (as chosen on the form, for a new object). Where both
    ends belong to a customer, it must be the same customer (a subscription cannot charge another
    customer's card). The account and mode of an existing object cannot change: the objects
    linked to it would be left in the old ones.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        narrow_choices(self)

    def clean(self):
        cleaned = super().clean()
        model = self._meta.model
        if not is_mode_scoped(model):
            return cleaned
        instance = self.instance
        noun = model._meta.verbose_name
        if not instance._state.adding and issubclass(model, ModeScoped):
            frozen = [name for name in ("account", "livemode") if name in self.changed_data]
            for name in frozen:
                self.add_error(
                    name,
                    f"{_label(self, name)} of an existing {noun} cannot change: the objects "
                    "linked to it would be left behind in the old account or mode.",
                )
            if frozen:
                return cleaned
        scope = self._own_scope(cleaned)
        if scope is None:
            return cleaned  # the account or mode field has its own error
        account_id, livemode = scope
        customer_id = self._own_customer_id(cleaned)
        for field in model._meta.concrete_fields:
            name = field.name
            if not field.many_to_one or name == "account" or name not in self.fields:
                continue
            target = cleaned.get(name)
            if target is None or not is_mode_scoped(field.related_model):
                continue
            label = _label(self, name)
            if target.account_id != account_id:
                self.add_error(
                    name,
                    f"{label} {target.pk} belongs to account {target.account_id}, not to this "
                    f"{noun}'s account {account_id}.",
                )
            elif target.livemode != livemode:
                self.add_error(
                    name,
                    f"{label} {target.pk} is a {_mode_name(target.livemode)} object; this "
                    f"{noun} is in {_mode_name(livemode)}.",
                )
            elif (
                customer_id is not None
                and field.related_model is not Customer
                and "customer" in field_names(target)
                and target.customer_id != customer_id
                # Links saved earlier stay valid after a card is detached; only new ones count.
                and (name in self.changed_data or "customer" in self.changed_data)
            ):
                owner = target.customer_id or "no customer"
                self.add_error(
                    name,
                    f"{label} {target.pk} belongs to {owner}, not to this {noun}'s customer "
                    f"{customer_id}.",
                )
        return cleaned

    def _own_scope(self, cleaned) -> tuple[str, bool] | None:
        """(account id, livemode) of the object as the form would save it; None if unknown."""
        instance = self.instance
        if "account" in self.fields:
            account = cleaned.get("account")
            if account is None:
                return None
            account_id = account.pk
        else:
            account_id = instance.account_id
        if "livemode" in self.fields:
            if "livemode" not in cleaned:
                return None
            livemode = bool(cleaned["livemode"])
        else:
            livemode = bool(instance.livemode)
        if account_id is None:
            return None
        return account_id, livemode

    def _own_customer_id(self, cleaned) -> str | None:
        """The customer the object belongs to (a customer is its own), if it has one."""
        if isinstance(self.instance, Customer):
            return self.instance.pk
        if "customer" not in field_names(self.instance):
            return None
        if "customer" in self.fields:
            customer = cleaned.get("customer")
            return customer.pk if customer is not None else None
        return self.instance.customer_id


class ScopedLinksMixin:
    """Model forms and FK widgets of admins and inlines that keep links in one account and mode."""

    form = ScopedModelForm

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and is_mode_scoped(db_field.related_model):
            db = kwargs.get("using")
            if db_field.name in self.get_autocomplete_fields(request):
                kwargs["widget"] = ScopedAutocompleteSelect(db_field, self.admin_site, using=db)
            elif db_field.name in self.raw_id_fields:
                kwargs["widget"] = ScopedRawIdWidget(
                    db_field.remote_field, self.admin_site, using=db
                )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# ---------------------------------------------------------------------------------------------
# Shared defaults


class BillingAdmin(ScopedLinksMixin, admin.ModelAdmin):
    """Defaults for every billing admin: no full count of big tables, 50 rows a page, and no
    links across accounts or modes."""

    show_full_result_count = False
    list_per_page = 50
    # Django 6 makes https the default scheme of URL inputs; ask for it now (branding logos).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # An autocomplete on a form whose object's account and mode are known asks for those
        # only (ScopedAutocompleteSelect); other pages never pass these parameters.
        account_id = request.GET.get(SCOPE_ACCOUNT_PARAM)
        livemode = request.GET.get(SCOPE_LIVEMODE_PARAM)
        if account_id and livemode in ("0", "1") and is_mode_scoped(self.model):
            queryset = queryset.filter(account_id=account_id, livemode=livemode == "1")
        if not queryset.ordered:
            # Autocomplete pages through these results; the changelist orders them itself.
            queryset = queryset.order_by("-pk")
        return queryset, may_have_duplicates

    def save_model(self, request, obj, form, change):
        """A change writes the fields the form changed, nothing else. `obj.save()` writes every
        column as the page read it: a counter the engine moved meanwhile (a customer's
        `next_invoice_sequence`, its balance, an account's invoice counters) went back, and the
        next invoice took a number already given."""
        if not change:
            return super().save_model(request, obj, form, change)
        columns = {field.name for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in columns]
        if changed:
            obj.save(update_fields=changed)


class ModeScopedAdmin(BillingAdmin):
    """An object of one account and mode: its id and creation time are the engine's."""

    readonly_fields = ("id", "created")
    autocomplete_fields = ("account",)


class ModeScopedInlineFormSet(BaseInlineFormSet):
    """New inline rows take the account and mode of the object they belong to."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if form.instance._state.adding:
            form.instance.account_id = self.instance.account_id
            form.instance.livemode = self.instance.livemode
            narrow_choices(form)


class ReadOnlyInline(admin.TabularInline):
    """An inline support can look at but not change: rows come from the engine."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ViewOnlyAdmin(ModeScopedAdmin):
    """A history support may read but never write: no add, change or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ---------------------------------------------------------------------------------------------
# Accounts, keys, rates, memberships


class ExchangeRateInline(admin.TabularInline):
    model = ExchangeRate
    fields = ("currency", "rate", "updated")
    readonly_fields = ("updated",)
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


class AccountMembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "created")
    readonly_fields = ("created",)
    raw_id_fields = ("user",)
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "account")


class ApiKeyInline(ReadOnlyInline):
    """Keys are made in the dashboard, where the secret is shown once; only `last4` is kept."""

    model = ApiKey
    fields = ("id", "name", "key", "livemode", "created", "last_used", "revoked_at")
    readonly_fields = fields

    @admin.display(description="Key")
    def key(self, obj):
        return obj.redacted


class ConnectionFilter(admin.SimpleListFilter):
    """Connected accounts by whether they are still connected to their platform (R-CON-7)."""

    title = "connection"
    parameter_name = "connection"

    def lookups(self, request, model_admin):
        return [("connected", "Connected"), ("disconnected", "Disconnected")]

    def queryset(self, request, queryset):
        connected = queryset.filter(type=AccountType.CONNECTED)
        if self.value() == "connected":
            return connected.filter(deauthorized_at__isnull=True)
        if self.value() == "disconnected":
            return connected.filter(deauthorized_at__isnull=False)
        return queryset


@admin.register(Account)
class AccountAdmin(BillingAdmin):
    list_display = (
        "id",
        "name",
        "type",
        link_column("platform", ordering="platform__name"),
        "connection",
        "email",
        "country",
        "default_currency",
        "created",
    )
    list_select_related = ("platform",)
    list_filter = ("type", ConnectionFilter, "country", "default_currency", "created")
    search_fields = ("=id", "name", "email", "branding_display_name")
    search_help_text = "Account id, name or email"
    autocomplete_fields = ("platform",)
    readonly_fields = (
        "id",
        "created",
        "invoice_sequence_test",
        "invoice_sequence_live",
        "deauthorized_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "type", "platform", "name", "email", "country", "created")}),
        # Disconnection changes how payments settle (SPEC R-CON-7): the dashboard's
        # disconnect/reconnect (or the actions below) do it, with its events.
        ("Connection", {"fields": ("deauthorized_at",)}),
        ("Defaults", {"fields": ("default_currency", "timezone")}),
        # The scheme applies to invoices finalized from now on. The last number given across
        # the account in each mode: only finalization moves these counters.
        (
            "Invoice numbering",
            {
                "fields": ("invoice_numbering", "invoice_sequence_test", "invoice_sequence_live"),
                "description": "Blank: the default of the account's country (across the account "
                "in the EU and the UK, for each customer elsewhere).",
            },
        ),
        (
            "Branding",
            {
                "fields": (
                    "branding_display_name",
                    "branding_logo_url",
                    "branding_primary_color",
                )
            },
        ),
        ("Metadata", {"fields": ("metadata",)}),
    )
    inlines = (ExchangeRateInline, AccountMembershipInline, ApiKeyInline)
    actions = ("disconnect_from_platform", "reconnect_to_platform")

    @admin.display(description="Connection", ordering="deauthorized_at")
    def connection(self, obj):
        if obj.type != AccountType.CONNECTED:
            return None
        if obj.deauthorized_at is None:
            return "Connected"
        return f"Disconnected since {obj.deauthorized_at:%Y-%m-%d %H:%M} UTC"

    @admin.action(description="Disconnect from platform")
    def disconnect_from_platform(self, request, queryset):
        def disconnect(account):
            if account.type != AccountType.CONNECTED:
                return messages.ERROR, "not a connected account: only those can disconnect."
            if account.is_disconnected:
                return messages.INFO, "already disconnected."
            connect_services.disconnect_account(account)
            return (
                messages.SUCCESS,
                "disconnected from its platform. Nothing was canceled: destination payments no "
                "longer transfer to it, and renewals on behalf of it are held as drafts.",
            )

        for_each(self, request, queryset, disconnect)

    @admin.action(description="Reconnect to platform")
    def reconnect_to_platform(self, request, queryset):
        def reconnect(account):
            if account.type != AccountType.CONNECTED:
                return messages.ERROR, "not a connected account: only those can reconnect."
            if not account.is_disconnected:
                return messages.INFO, "already connected."
            held = Invoice.objects.filter(
                on_behalf_of=account, status=InvoiceStatus.DRAFT, awaiting_reconnection=True
            ).count()
            connect_services.reconnect_account(account)
            return (
                messages.SUCCESS,
                f"reconnected to its platform; {held} held invoice{'s' if held != 1 else ''} "
                "go back to automatic collection.",
            )

        for_each(self, request, queryset, reconnect)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(BillingAdmin):
    list_display = ("id", account_link, "currency", "rate", "updated")
    list_select_related = ("account",)
    list_filter = ("currency",)
    search_fields = ("=account__id", "account__name", "=currency")
    autocomplete_fields = ("account",)
    readonly_fields = ("id", "updated")


@admin.register(ApiKey)
class ApiKeyAdmin(BillingAdmin):
    """The hash never leaves the database: support sees the redacted key and renames it."""

    list_display = (
        "id",
        "name",
        "key",
        account_link,
        "livemode",
        "created",
        "last_used",
        "revoked_at",
    )
    list_select_related = ("account",)
    list_filter = ("livemode", ("revoked_at", admin.EmptyFieldListFilter), "created")
    search_fields = ("=id", "name", "=account__id", "account__name", "=last4")
    search_help_text = "Key id, name, account or last four characters"
    fields = ("id", "account", "name", "key", "livemode", "created", "last_used", "revoked_at")
    readonly_fields = ("id", "account", "key", "livemode", "created", "last_used", "revoked_at")

    @admin.display(description="Key")
    def key(self, obj):
        return obj.redacted

    def has_add_permission(self, request):
        # A key made here would have no secret anyone ever saw: keys are made in the dashboard.
        return False


@admin.register(Membership)
class MembershipAdmin(BillingAdmin):
    list_display = (
        "id",
        link_column("user", ordering="user__email"),
        account_link,
        "role",
        "created",
    )
    list_select_related = ("user", "account")
    list_filter = ("role", "created")
    search_fields = ("user__email", "user__username", "=account__id", "account__name")
    search_help_text = "User email or username, account id or name"
    raw_id_fields = ("user",)
    autocomplete_fields = ("account",)
    readonly_fields = ("id", "created")


# ---------------------------------------------------------------------------------------------
# Customers


class PaymentMethodInline(ReadOnlyInline):
    """Card details come from the gateway; only the last four digits are ever stored."""

    model = PaymentMethod
    fk_name = "customer"
    fields = (
        "id",
        "card_brand",
        "card_last4",
        "card_exp_month",
        "card_exp_year",
        "test_behavior",
        "livemode",
        "created",
    )
    readonly_fields = fields


@admin.register(Customer)
class CustomerAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        "email",
        "name",
        account_link,
        amount_column("balance"),
        "livemode",
        "created",
    )
    list_select_related = ("account",)
    list_filter = ("livemode", ("deleted_at", admin.EmptyFieldListFilter), "created")
    search_fields = ("=id", "email", "name")
    search_help_text = "Customer id, email or name"
    autocomplete_fields = ("account",)
    raw_id_fields = ("invoice_settings_default_payment_method", "test_clock")
    # The balance moves only through balance transactions; deletion only through the API; the
    # invoice prefix and sequence through the API or the dashboard, which check that no number
    # already given can be given again.
    readonly_fields = (
        "id",
        "created",
        "balance",
        "deleted_at",
        "invoice_prefix",
        "next_invoice_sequence",
    )
    inlines = (PaymentMethodInline,)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        "__str__",
        customer_link,
        "expiry",
        "test_behavior",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("customer", "account")
    list_filter = ("card_brand", "test_behavior", "livemode", "created")
    search_fields = (
        "=id",
        "=customer__id",
        "customer__email",
        "customer__name",
        "=card_last4",
        "=card_fingerprint",
    )
    search_help_text = "Payment method id, customer id, email or name, last four digits"
    autocomplete_fields = ("account", "customer")

    @admin.display(description="Expires", ordering="card_exp_year")
    def expiry(self, obj):
        return f"{obj.card_exp_month:02d}/{obj.card_exp_year}"


@admin.register(CustomerBalanceTransaction)
class CustomerBalanceTransactionAdmin(ViewOnlyAdmin):
    """A ledger: `ending_balance` and the customer's balance must agree, so no hand edits."""

    list_display = (
        "id",
        customer_link,
        "type",
        amount_column("amount"),
        amount_column("ending_balance"),
        link_column("invoice"),
        "livemode",
        "created",
    )
    list_select_related = ("customer", "invoice", "account")
    list_filter = ("type", "livemode", "created")
    search_fields = ("=id", "=customer__id", "customer__email", "=invoice__id")
    search_help_text = "Transaction id, customer id or email, invoice id"
    autocomplete_fields = ("account", "customer")
    raw_id_fields = ("invoice",)


# ---------------------------------------------------------------------------------------------
# Connect: balances, transfers and platform fees (SPEC R-CON-2/3/4), written by payments only


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(ViewOnlyAdmin):
    """An account's balance ledger: balances are sums of `net`, so rows are never edited."""

    list_display = (
        "id",
        account_link,
        "type",
        amount_column("amount"),
        amount_column("fee"),
        amount_column("net"),
        "source_link",
        "livemode",
        "created",
    )
    list_select_related = ("account",)
    list_filter = ("type", "livemode", "currency", "created")
    search_fields = ("=id", "=account__id", "=source")
    search_help_text = "Exact transaction id, account id or source id (pi_…, tr_…, fee_…, py_…)"
    fields = (
        "id",
        "account",
        "livemode",
        "type",
        "amount",
        "fee",
        "net",
        "currency",
        "source",
        "source_link",
        "description",
        "created",
    )
    readonly_fields = fields

    @admin.display(description="Source object", ordering="source")
    def source_link(self, obj):
        return id_link(obj.source)


@admin.register(Transfer)
class TransferAdmin(ViewOnlyAdmin):
    """Funds a destination charge sent on to a connected account (R-CON-2)."""

    list_display = (
        "id",
        link_column("account", "Platform", ordering="account__name"),
        link_column("destination", ordering="destination__name"),
        amount_column("amount"),
        link_column("invoice"),
        link_column("payment_intent"),
        "livemode",
        "created",
    )
    list_select_related = ("account", "destination", "invoice", "payment_intent")
    list_filter = ("livemode", "currency", "created")
    search_fields = (
        "=id",
        "=account__id",
        "=destination__id",
        "=invoice__id",
        "=payment_intent__id",
        "=transfer_group",
    )
    search_help_text = "Exact transfer id, platform or destination id, invoice, payment or group"
    autocomplete_fields = ("account", "destination")
    raw_id_fields = ("invoice", "payment_intent", "balance_transaction")


@admin.register(ApplicationFee)
class ApplicationFeeAdmin(ViewOnlyAdmin):
    """The platform's share of a payment (R-CON-3/4); `account` is the platform."""

    list_display = (
        "id",
        link_column("account", "Platform", ordering="account__name"),
        link_column("connected_account", ordering="connected_account__name"),
        amount_column("amount"),
        link_column("invoice"),
        link_column("payment_intent"),
        "livemode",
        "created",
    )
    list_select_related = ("account", "connected_account", "invoice", "payment_intent")
    list_filter = ("livemode", "currency", "created")
    search_fields = (
        "=id",
        "=account__id",
        "=connected_account__id",
        "=invoice__id",
        "=payment_intent__id",
    )
    search_help_text = "Exact fee id, platform or connected account id, invoice or payment id"
    autocomplete_fields = ("account", "connected_account")
    raw_id_fields = ("invoice", "payment_intent", "balance_transaction")


# ---------------------------------------------------------------------------------------------
# Catalog


@admin.register(Product)
class ProductAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        "name",
        "active",
        link_column("default_price"),
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("default_price", "account")
    list_filter = ("active", "livemode", "created")
    search_fields = ("=id", "name")
    search_help_text = "Product id or name"
    raw_id_fields = ("default_price",)


@admin.register(Price)
class PriceAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        "__str__",
        link_column("product", ordering="product__name"),
        "nickname",
        "lookup_key",
        "active",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("product", "account")
    list_filter = ("active", "type", "recurring_interval", "currency", "livemode", "created")
    search_fields = ("=id", "product__name", "nickname", "=lookup_key")
    search_help_text = "Price id, product name, nickname or lookup key"
    autocomplete_fields = ("account", "product")


@admin.register(Coupon)
class CouponAdmin(ModeScopedAdmin):
    list_display = (
        "code",
        "name",
        "off",
        "duration",
        "redemptions",
        "valid",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("account",)
    list_filter = ("duration", "valid", "livemode", "created")
    search_fields = ("=code", "name")
    search_help_text = "Coupon code or name"
    # Redemptions are counted by the engine as discounts are applied.
    readonly_fields = ("id", "created", "times_redeemed")

    @admin.display(description="Off")
    def off(self, obj):
        if obj.percent_off is not None:
            return f"{obj.percent_off:f}".rstrip("0").rstrip(".") + "%"
        return format_money(obj.amount_off, obj.currency)

    @admin.display(description="Redeemed", ordering="times_redeemed")
    def redemptions(self, obj):
        if obj.max_redemptions is None:
            return str(obj.times_redeemed)
        return f"{obj.times_redeemed} / {obj.max_redemptions}"


@admin.register(Discount)
class DiscountAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        link_column("coupon", ordering="coupon__code"),
        customer_link,
        link_column("subscription"),
        "start",
        "end",
        "livemode",
        "created",
    )
    list_select_related = ("coupon", "customer", "subscription", "account")
    list_filter = ("livemode", "created")
    search_fields = ("=id", "=coupon__code", "=customer__id", "customer__email")
    search_help_text = "Discount id, coupon code, customer id or email, subscription id"
    autocomplete_fields = ("account", "coupon", "customer")
    raw_id_fields = ("subscription",)


# ---------------------------------------------------------------------------------------------
# Subscriptions


class SubscriptionItemInline(ScopedLinksMixin, admin.TabularInline):
    model = SubscriptionItem
    formset = ModeScopedInlineFormSet
    fields = ("id", "price", "quantity", "created")
    readonly_fields = ("id", "created")
    autocomplete_fields = ("price",)
    extra = 0
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("price")


@admin.register(Subscription)
class SubscriptionAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        customer_link,
        "status",
        "collection_method",
        "current_period_end",
        "cancel_at_period_end",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("customer", "account")
    list_filter = (
        "status",
        "collection_method",
        "cancel_at_period_end",
        "livemode",
        "created",
    )
    date_hierarchy = "created"
    search_fields = ("=id", "=customer__id", "customer__email", "customer__name")
    search_help_text = "Subscription id, customer id, email or name"
    autocomplete_fields = (
        "account",
        "customer",
        "transfer_data_destination",
        "on_behalf_of",
        "application",
    )
    raw_id_fields = ("default_payment_method", "latest_invoice", "test_clock")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "account",
                    "livemode",
                    "customer",
                    "status",
                    "currency",
                    "description",
                    "created",
                )
            },
        ),
        (
            "Billing",
            {
                "fields": (
                    "collection_method",
                    "days_until_due",
                    "default_payment_method",
                    "default_source",
                    "latest_invoice",
                    "start_date",
                    "billing_cycle_anchor",
                    "current_period_start",
                    "current_period_end",
                )
            },
        ),
        (
            "Trial",
            {"fields": ("trial_start", "trial_end", "trial_settings_missing_payment_method")},
        ),
        (
            "Cancellation",
            {
                "fields": (
                    "cancel_at_period_end",
                    "cancel_at",
                    "canceled_at",
                    "ended_at",
                    "cancellation_details",
                )
            },
        ),
        (
            "Paused collection",
            {"fields": ("pause_collection_behavior", "pause_collection_resumes_at")},
        ),
        (
            "Connect",
            {
                "fields": (
                    "application_fee_percent",
                    "transfer_data_destination",
                    "transfer_data_amount_percent",
                    "on_behalf_of",
                    "application",
                )
            },
        ),
        ("Other", {"fields": ("test_clock", "metadata")}),
    )
    inlines = (SubscriptionItemInline,)
    actions = ("cancel_now", "cancel_at_period_end")

    @admin.action(description="Cancel subscription now")
    def cancel_now(self, request, queryset):
        def cancel(subscription):
            subscription_services.cancel_subscription(subscription)
            return messages.SUCCESS, "canceled."

        for_each(self, request, queryset, cancel)

    @admin.action(description="Cancel at period end")
    def cancel_at_period_end(self, request, queryset):
        def schedule_cancellation(subscription):
            ended = subscription.status in subscription_services.ENDED
            if subscription.cancel_at_period_end and not ended:
                # Asking again would only move `canceled_at`, the time the customer asked.
                return messages.INFO, "already cancels at the end of its period."
            subscription = subscription_services.cancel_subscription(
                subscription, at_period_end=True
            )
            ends = f"{subscription.cancel_at:%Y-%m-%d %H:%M} UTC"
            return messages.SUCCESS, f"cancels at the end of its period ({ends})."

        for_each(self, request, queryset, schedule_cancellation)


@admin.register(SubscriptionItem)
class SubscriptionItemAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        link_column("subscription"),
        link_column("price"),
        "quantity",
        "amount_formatted",
        "livemode",
        "created",
    )
    list_select_related = ("subscription", "price", "account")
    list_filter = ("livemode", "created")
    search_fields = ("=id", "=subscription__id", "=price__id", "subscription__customer__email")
    search_help_text = "Item id, subscription id, price id or customer email"
    autocomplete_fields = ("account", "price")
    raw_id_fields = ("subscription",)

    @admin.display(description="Amount")
    def amount_formatted(self, obj):
        return format_money(obj.amount, obj.price.currency)


# ---------------------------------------------------------------------------------------------
# Invoices and payments

INVOICE_AMOUNT_FIELDS = (
    "subtotal",
    "total_discount_amount",
    "tax",
    "total",
    "starting_balance",
    "ending_balance",
    "amount_due",
    "amount_paid",
    "amount_remaining",
    "application_fee_amount",
)


class InvoiceLineInline(ScopedLinksMixin, admin.TabularInline):
    """Lines are editable while the invoice is a draft and frozen once it is finalized."""

    model = InvoiceLineItem
    formset = ModeScopedInlineFormSet
    fields = (
        "id",
        "type",
        "description",
        "price",
        "quantity",
        "amount",
        "currency",
        "proration",
        "period_start",
        "period_end",
    )
    autocomplete_fields = ("price",)
    extra = 0
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            return self.fields
        return ("id",)

    def has_add_permission(self, request, obj=None):
        return (obj is None or obj.status == InvoiceStatus.DRAFT) and super().has_add_permission(
            request, obj
        )

    def has_delete_permission(self, request, obj=None):
        return (obj is None or obj.status == InvoiceStatus.DRAFT) and super().has_delete_permission(
            request, obj
        )


@admin.register(Invoice)
class InvoiceAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        "number",
        customer_link,
        "status",
        amount_column("total"),
        amount_column("amount_remaining", "Remaining"),
        "collection_method",
        "due_date",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("customer", "account")
    list_filter = ("status", "collection_method", "billing_reason", "livemode", "created")
    date_hierarchy = "created"
    search_fields = (
        "=id",
        "=number",
        "=customer__id",
        "customer__email",
        "customer__name",
        "=subscription__id",
    )
    search_help_text = "Invoice id or number, customer id, email or name, subscription id"
    autocomplete_fields = (
        "account",
        "customer",
        "on_behalf_of",
        "transfer_data_destination",
        "application",
    )
    raw_id_fields = ("subscription", "payment_intent", "default_payment_method", "test_clock")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "account",
                    "livemode",
                    "customer",
                    "subscription",
                    "status",
                    "number",
                    "billing_reason",
                    "collection_method",
                    "currency",
                    "description",
                    "created",
                )
            },
        ),
        ("Amounts", {"fields": ("amounts", *INVOICE_AMOUNT_FIELDS)}),
        (
            "Collection",
            {
                "fields": (
                    "due_date",
                    "auto_advance",
                    "attempt_count",
                    "attempted",
                    "next_payment_attempt",
                    "default_payment_method",
                    "payment_intent",
                    "last_finalization_error",
                )
            },
        ),
        ("Tax", {"fields": ("automatic_tax_enabled", "automatic_tax_status")}),
        (
            "Dates",
            {
                "fields": (
                    "period_start",
                    "period_end",
                    "finalized_at",
                    "paid_at",
                    "voided_at",
                    "marked_uncollectible_at",
                    "webhooks_delivered_at",
                )
            },
        ),
        (
            "Connect",
            {
                "fields": (
                    "on_behalf_of",
                    "transfer_data_destination",
                    "application",
                    "awaiting_reconnection",
                )
            },
        ),
        ("Other", {"fields": ("test_clock", "metadata")}),
    )
    inlines = (InvoiceLineInline,)
    actions = ("retry_payment", "void")

    @admin.action(description="Retry payment now")
    def retry_payment(self, request, queryset):
        def retry(invoice):
            try:
                invoice = invoice_services.pay_invoice(invoice)
            except invoice_services.CardError as declined:
                return messages.ERROR, f"payment declined: {declined}"
            if invoice.status == InvoiceStatus.PAID:
                return messages.SUCCESS, "paid."
            intent = invoice.payment_intent
            if intent is not None and intent.status == PaymentIntentStatus.REQUIRES_ACTION:
                return messages.WARNING, "the customer must authenticate the payment (3-D Secure)."
            return messages.WARNING, f"still {invoice.status}."

        for_each(self, request, queryset.select_related("customer"), retry)

    @admin.action(description="Void invoice")
    def void(self, request, queryset):
        def void_one(invoice):
            invoice_services.void_invoice(invoice)
            return messages.SUCCESS, "voided."

        for_each(self, request, queryset, void_one)

    def get_readonly_fields(self, request, obj=None):
        readonly = ("id", "created", "amounts")
        # A finalized invoice is a document the customer has seen: its amounts, currency and
        # customer no longer change (paid ones least of all).
        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            readonly += ("customer", "currency", *INVOICE_AMOUNT_FIELDS)
        return readonly

    @admin.display(description="Summary")
    def amounts(self, obj):
        if not obj.currency:
            return None
        return (
            f"total {format_money(obj.total, obj.currency)} · "
            f"due {format_money(obj.amount_due, obj.currency)} · "
            f"paid {format_money(obj.amount_paid, obj.currency)} · "
            f"remaining {format_money(obj.amount_remaining, obj.currency)}"
        )


@admin.register(InvoiceLineItem)
class InvoiceLineItemAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        link_column("invoice"),
        "description",
        amount_column("amount"),
        "quantity",
        "proration",
        "livemode",
        "created",
    )
    list_select_related = ("invoice", "account")
    list_filter = ("type", "proration", "livemode", "created")
    search_fields = ("=id", "=invoice__id", "=invoice__number", "description")
    search_help_text = "Line id, invoice id or number, description"
    autocomplete_fields = ("account", "price")
    raw_id_fields = ("invoice", "subscription", "subscription_item")


@admin.register(InvoiceItem)
class InvoiceItemAdmin(ModeScopedAdmin):
    """Pending charges for a customer's next invoice, and the ones already placed on one."""

    list_display = (
        "id",
        customer_link,
        link_column("subscription"),
        link_column("invoice"),
        link_column("price"),
        "description",
        amount_column("amount"),
        "quantity",
        "proration",
        "livemode",
        "created",
    )
    list_select_related = ("customer", "subscription", "invoice", "price", "account")
    list_filter = (
        ("invoice", admin.EmptyFieldListFilter),
        "proration",
        "livemode",
        "created",
    )
    search_fields = (
        "=id",
        "=customer__id",
        "customer__email",
        "=subscription__id",
        "=invoice__id",
        "=invoice__number",
        "description",
    )
    search_help_text = "Item id, customer id or email, subscription id, invoice id or number"
    autocomplete_fields = ("account", "customer", "price")
    raw_id_fields = ("subscription", "invoice")
    FIELDS = (
        "id",
        "account",
        "livemode",
        "customer",
        "subscription",
        "invoice",
        "price",
        "description",
        "amount",
        "currency",
        "quantity",
        "proration",
        "discountable",
        "period_start",
        "period_end",
        "metadata",
        "created",
    )

    def get_readonly_fields(self, request, obj=None):
        # Like invoice lines: an item on a finalized invoice is part of a document the customer
        # has seen. Pending items (and items on drafts) can still be corrected.
        if obj is not None and obj.invoice_id and obj.invoice.status != InvoiceStatus.DRAFT:
            return self.FIELDS
        return ("id", "created")


@admin.register(PaymentIntent)
class PaymentIntentAdmin(ModeScopedAdmin):
    list_display = (
        "id",
        customer_link,
        link_column("invoice"),
        amount_column("amount"),
        amount_column("amount_received", "Received"),
        "status",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("customer", "invoice", "account")
    list_filter = ("status", "livemode", "created")
    date_hierarchy = "created"
    search_fields = ("=id", "=customer__id", "customer__email", "=invoice__id")
    search_help_text = "Payment intent id, customer id or email, invoice id"
    autocomplete_fields = ("account", "customer", "on_behalf_of", "transfer_data_destination")
    raw_id_fields = ("invoice", "payment_method")
    # client_secret is not editable on the model and, being a secret, not shown either.


# ---------------------------------------------------------------------------------------------
# Events and test clocks


@admin.register(Event)
class EventAdmin(ViewOnlyAdmin):
    """The event log is history: it is read, never written, here."""

    list_display = (
        "id",
        "type",
        "object_link",
        "customer_link",
        "pending_webhooks",
        account_link,
        "livemode",
        "created",
    )
    list_select_related = ("account",)
    # No date_hierarchy and no filter on `type`: both scan the whole table for their choices,
    # and this is the biggest table there is. Exact searches use the indexes instead.
    list_filter = ("livemode", "created")
    search_fields = ("=id", "=type", "=object_id", "=customer_id", "=request_id")
    search_help_text = "Exact event id, type (invoice.paid), object id, customer id or request id"
    fields = (
        "id",
        "type",
        "account",
        "livemode",
        "created",
        "api_version",
        "object_link",
        "customer_link",
        "request_id",
        "request_idempotency_key",
        "pending_webhooks",
        "data_pretty",
    )
    readonly_fields = fields

    @admin.display(description="Object", ordering="object_id")
    def object_link(self, obj):
        return id_link(obj.object_id)

    @admin.display(description="Customer", ordering="customer_id")
    def customer_link(self, obj):
        return id_link(obj.customer_id)

    @admin.display(description="Data")
    def data_pretty(self, obj):
        return format_html(
            '<pre style="white-space: pre-wrap">{}</pre>',
            json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False),
        )


@admin.register(TestClock)
class TestClockAdmin(ModeScopedAdmin):
    list_display = ("id", "name", "frozen_time", "status", account_link, "created")
    list_select_related = ("account",)
    list_filter = ("status", "created")
    search_fields = ("=id", "name")
    search_help_text = "Test clock id or name"
    # Clocks are test mode only, and move only by being advanced.
    readonly_fields = ("id", "created", "livemode", "status", "advancing_to")


class WebhookEndpointForm(ScopedModelForm):
    """The URL and event types checked as the API checks them (no private hosts in live mode)."""

    def clean(self):
        cleaned = super().clean()
        livemode = cleaned.get("livemode", self.instance.livemode)
        for name, check in (
            ("url", lambda value: webhook_services.validate_url(value, livemode=bool(livemode))),
            ("enabled_events", webhook_services.validate_enabled_events),
        ):
            if name not in cleaned:
                continue
            try:
                cleaned[name] = check(cleaned[name])
            except ValidationError as error:
                self.add_error(name, error.messages[0])
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ModeScopedAdmin):
    form = WebhookEndpointForm
    list_display = ("id", "url", "status", "connect", account_link, "livemode", "created")
    list_select_related = ("account",)
    list_filter = ("status", "connect", "livemode", "created")
    search_fields = ("=id", "url", "description")
    search_help_text = "Endpoint id, URL or description"
    # The signing secret is made with the endpoint; rolling it is a service of its own (#5).
    # The previous secret and the failure run are the engine's.
    readonly_fields = (
        "id",
        "created",
        "secret",
        "secret_previous",
        "secret_previous_expires_at",
        "failing_since",
    )


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = (
        "number",
        "started_at",
        "status_code",
        "duration_ms",
        "error",
        "response_excerpt",
        "manual",
    )
    readonly_fields = fields
    ordering = ("-started_at", "-id")
    show_change_link = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ViewOnlyAdmin):
    """The delivery log: read here, written by the engine; support can resend (SPEC R-EVT-3)."""

    list_display = (
        "id",
        link_column("event"),
        "event_type",
        link_column("endpoint"),
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created",
        account_link,
        "livemode",
    )
    list_select_related = ("event", "endpoint", "account")
    list_filter = ("status", "livemode", "created")
    # Exact ids use the primary key and the (event, endpoint) unique index.
    search_fields = ("=id", "=event__id", "=endpoint__id")
    search_help_text = "Exact delivery, event or endpoint id"
    ordering = ("-created", "-id")
    fields = (
        "id",
        "event",
        "endpoint",
        "account",
        "livemode",
        "test_clock",
        "status",
        "attempt_count",
        "scheduled_attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created",
        "delivered_at",
        "lease_token",
        "leased_until",
    )
    readonly_fields = fields
    inlines = (WebhookAttemptInline,)
    actions = ("resend",)

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, obj):
        return obj.event.type

    @admin.action(description="Resend")
    def resend(self, request, queryset):
        def resend_one(delivery):
            webhook_services.resend_delivery(delivery)
            return messages.SUCCESS, "queued for a new attempt."

        for_each(self, request, queryset, resend_one)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(BillingAdmin):
    """One HTTP request of a delivery; history, never written here."""

    list_display = (
        "id",
        link_column("delivery"),
        "number",
        "started_at",
        "status_code",
        "duration_ms",
        "manual",
    )
    list_select_related = ("delivery",)
    list_filter = ("manual", "started_at")
    search_fields = ("=delivery__id",)
    search_help_text = "Exact delivery id"
    ordering = ("-id",)
    fields = (
        "id",
        "delivery",
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_excerpt",
        "manual",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ---------------------------------------------------------------------------------------------
# Due work and revenue recovery


class JobKindFilter(admin.SimpleListFilter):
    """Job kinds from the timeline's handler registry: no scan of the table for its choices."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [(kind, kind) for kind in timeline.kinds()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


def first_line_of_error(error: str) -> str:
    """A traceback's last line (the exception and its message), which says what went wrong."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


@admin.register(DueJob)
class DueJobAdmin(ViewOnlyAdmin):
    """The timeline: read here, changed only by the engine, or run now with the action."""

    list_display = (
        "id",
        "kind",
        "target_link",
        "due_at",
        "status",
        "attempts",
        link_column("test_clock"),
        "error_excerpt",
        account_link,
        "livemode",
    )
    list_select_related = ("test_clock", "account")
    list_filter = ("status", JobKindFilter, "due_at", ("test_clock", admin.EmptyFieldListFilter))
    # The (target_id, status) index answers exact searches; a partial id would scan the table.
    search_fields = ("=target_id",)
    search_help_text = "Exact id of the object the job is about (sub_…, in_…)"
    ordering = ("-id",)
    fields = (
        "id",
        "kind",
        "target_link",
        "status",
        "due_at",
        "test_clock",
        "attempts",
        "error_pretty",
        "account",
        "livemode",
        "created",
        "queued_at",
        "finished_at",
    )
    readonly_fields = fields
    actions = ("run_now",)

    @admin.display(description="Target", ordering="target_id")
    def target_link(self, obj):
        return id_link(obj.target_id)

    @admin.display(description="Last error")
    def error_excerpt(self, obj):
        return Truncator(first_line_of_error(obj.last_error)).chars(80) or None

    @admin.display(description="Last error")
    def error_pretty(self, obj):
        if not obj.last_error:
            return None
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.last_error)

    @admin.action(description="Run now")
    def run_now(self, request, queryset):
        def run(job):
            if job.status not in (JobStatus.PENDING, JobStatus.QUEUED):
                return messages.INFO, f"not run: it is {job.get_status_display().lower()}."
            if job.test_clock_id is not None:
                # A clock's jobs run in time order as the clock advances; one run out of turn
                # would happen at the wrong simulated time.
                return messages.WARNING, "not run: it runs when its test clock is advanced."
            try:
                ran = timeline.run(job.pk)
            except Exception as error:
                # run() rolled the work back and recorded the failure on the job (it is retried
                # later, or marked failed after the last attempt).
                log.exception("due job %s failed when run from the admin", job.pk)
                return messages.ERROR, f"failed: {error_text(error)}"
            if not ran:
                return messages.INFO, "not run: another worker finished it first."
            return messages.SUCCESS, "ran."

        for_each(self, request, queryset, run)


@admin.register(RecoverySettings)
class RecoverySettingsAdmin(BillingAdmin):
    """Each account's dunning settings, per mode; the engine reads them at every failed payment."""

    # The retry schedule's limits are checked by RecoverySettings.clean(), which admin forms run.
    list_display = (
        "id",
        account_link,
        "livemode",
        "retry_mode",
        "retry_days",
        "after_retries_subscription",
        "after_retries_invoice",
        "upcoming_renewal_days",
        "updated",
    )
    list_select_related = ("account",)
    list_filter = ("livemode", "retry_mode", "after_retries_subscription", "after_retries_invoice")
    search_fields = ("=account__id", "account__name")
    search_help_text = "Account id or name"
    autocomplete_fields = ("account",)
    readonly_fields = ("id", "updated")
    fieldsets = (
        (None, {"fields": ("id", "account", "livemode", "updated")}),
        ("Retries", {"fields": ("retry_mode", "retry_days")}),
        (
            "After the last retry",
            {"fields": ("after_retries_subscription", "after_retries_invoice")},
        ),
        ("Notices", {"fields": ("upcoming_renewal_days",)}),
    )


# ---------------------------------------------------------------------------------------------
# Users: django.contrib.auth's admin, with the accounts each user belongs to.


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    fields = ("account", "role", "created")
    readonly_fields = ("created",)
    autocomplete_fields = ("account",)
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "account")


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class SupportUserAdmin(UserAdmin):
    inlines = (*UserAdmin.inlines, UserMembershipInline)


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(BillingAdmin):
    """The /v1 API's idempotency keys, read-only: what a retried request will be answered."""

    list_display = ("key", "method", "path", "status_code", "account", "livemode", "created")
    list_filter = ("livemode", "status_code")
    search_fields = ("key", "request_id")
    readonly_fields = ("id",)
    autocomplete_fields = ("account",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
