"""Dashboard forms: list filters (each knows how to filter a queryset) and settings forms."""

import datetime
import re

from django import forms
from django.db.models import Q
from django.utils import timezone

from billing import events
from billing.choices import (
    AfterRetriesInvoice,
    AfterRetriesSubscription,
    CollectionMethod,
    InvoiceNumbering,
    InvoiceStatus,
    RetryMode,
    SubscriptionStatus,
)
from billing.models import Account
from billing.models.jobs import MAX_CUSTOM_RETRIES, MAX_RETRY_GAP_DAYS
from billing.services import known_timezones, validate_timezone
from billing.validators import validate_currency

# Suggestions for the events filter: every type the product emits (SPEC R-EVT-1). Any type may
# be typed, and `invoice.*` matches a whole family.
EVENT_TYPES = sorted(events.EVENT_TYPES)

_ID_PATTERN = re.compile(r"^[a-z]+_[0-9A-Za-z]+$")


def _with_blank(choices, label="All"):
    return [("", label), *choices]


def _start_of_day(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class ListFilterForm(forms.Form):
    """Base of the list filters: a created-date range; subclasses add fields and `apply`.

    Invalid fields are reported inline and ignored; valid ones still filter.
    """

    created_from = forms.DateField(
        required=False, label="Created from", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        required=False, label="Created to", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "Must be on or after “Created from”.")
        return cleaned

    def filter(self, queryset):
        """`queryset` narrowed by every field that validated."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        if data.get("created_from"):
            queryset = queryset.filter(created__gte=_start_of_day(data["created_from"]))
        if data.get("created_to"):
            end = _start_of_day(data["created_to"] + datetime.timedelta(days=1))
            queryset = queryset.filter(created__lt=end)
        return self.apply(queryset, data)

    def apply(self, queryset, data):
        return queryset

    @property
    def is_filtered(self) -> bool:
        return any(self.data.get(name) for name in self.fields)


def _looks_like_id(text: str) -> bool:
    return bool(_ID_PATTERN.match(text))


class CustomerFilterForm(ListFilterForm):
    """Search customers by email or name fragment, or exact id."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Email, name or cus_…"}),
    )
    field_order = ["q", "created_from", "created_to"]

    def apply(self, queryset, data):
        q = (data.get("q") or "").strip()
        if q:
            match = Q(email__icontains=q) | Q(name__icontains=q)
            if _looks_like_id(q):
                match |= Q(pk=q)
            queryset = queryset.filter(match)
        return queryset


class _CustomerEmailSearch(ListFilterForm):
    """A search box matching the customer's email, or exact ids."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Customer email or id"}),
    )

    def search(self, queryset, q):
        match = Q(customer__email__icontains=q)
        if _looks_like_id(q):
            match |= Q(pk=q) | Q(customer_id=q)
        return queryset.filter(match)


class SubscriptionFilterForm(_CustomerEmailSearch):
    """Subscriptions by status, customer email or id."""

    status = forms.ChoiceField(required=False, choices=_with_blank(SubscriptionStatus.choices))
    field_order = ["q", "status", "created_from", "created_to"]

    def apply(self, queryset, data):
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        q = (data.get("q") or "").strip()
        return self.search(queryset, q) if q else queryset


class InvoiceFilterForm(_CustomerEmailSearch):
    """Invoices by status, collection method, customer email, number or id."""

    status = forms.ChoiceField(required=False, choices=_with_blank(InvoiceStatus.choices))
    collection_method = forms.ChoiceField(
        required=False,
        label="Collection",
        choices=_with_blank(CollectionMethod.choices),
    )
    field_order = ["q", "status", "collection_method", "created_from", "created_to"]

    def search(self, queryset, q):
        match = Q(customer__email__icontains=q) | Q(number=q)
        if _looks_like_id(q):
            match |= Q(pk=q) | Q(customer_id=q) | Q(subscription_id=q)
        return queryset.filter(match)

    def apply(self, queryset, data):
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        if data.get("collection_method"):
            queryset = queryset.filter(collection_method=data["collection_method"])
        q = (data.get("q") or "").strip()
        return self.search(queryset, q) if q else queryset


class EventFilterForm(ListFilterForm):
    """Events by type (`invoice.*` for a family) and the object they are about."""

    type = forms.CharField(
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"placeholder": "invoice.paid or invoice.*", "list": "event-types"}
        ),
    )
    object_id = forms.CharField(
        required=False,
        label="Object",
        max_length=64,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "cus_…, in_…"}),
    )
    field_order = ["type", "object_id", "created_from", "created_to"]

    def apply(self, queryset, data):
        event_type = (data.get("type") or "").strip()
        if event_type.endswith("*"):
            queryset = queryset.filter(type__startswith=event_type[:-1])
        elif event_type:
            queryset = queryset.filter(type=event_type)
        object_id = (data.get("object_id") or "").strip()
        if object_id:
            queryset = queryset.filter(Q(object_id=object_id) | Q(customer_id=object_id))
        return queryset


class ClockFilterForm(ListFilterForm):
    """Test clocks filter by creation date only."""


# -- Settings ---------------------------------------------------------------------------------


class CurrencyField(forms.CharField):
    """A three-letter ISO code, typed in any case, cleaned to Stripe's lowercase."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("min_length", 3)
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean((value or "").strip().lower())
        if value:
            validate_currency(value)
        return value


class AccountSettingsForm(forms.ModelForm):
    """What an owner may change about the account."""

    default_currency = CurrencyField(label="Default currency", help_text="e.g. usd, eur, jpy")
    timezone = forms.ChoiceField(label="Time zone")
    branding_logo_url = forms.URLField(
        label="Logo URL", required=False, assume_scheme="https", max_length=200
    )
    branding_primary_color = forms.RegexField(
        label="Brand colour",
        regex=r"^#[0-9A-Fa-f]{6}$",
        error_messages={"invalid": "Enter a colour as #RRGGBB."},
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    invoice_numbering = forms.ChoiceField(
        label="Invoice numbering",
        choices=InvoiceNumbering.choices,
        help_text="For invoices finalized from now on. Across the account: one prefix and one "
        "unbroken sequence (the EU's and the UK's rule); for each customer: the customer's "
        "own prefix and sequence, which does not tell customers how many invoices you send.",
    )

    class Meta:
        model = Account
        fields = [
            "name",
            "default_currency",
            "timezone",
            "branding_display_name",
            "branding_logo_url",
            "branding_primary_color",
            "invoice_numbering",
        ]
        labels = {
            "name": "Account name",
            "branding_display_name": "Display name",
        }
        help_texts = {"branding_display_name": "Shown to customers in emails and hosted pages."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(tz, tz) for tz in known_timezones()]
        # Never chosen yet: the country's default, shown as the choice in force.
        self.initial["invoice_numbering"] = self.instance.invoice_numbering_in_force

    def clean_timezone(self):
        value = self.cleaned_data["timezone"]
        validate_timezone(value)
        return value

    def clean_invoice_numbering(self):
        value = self.cleaned_data["invoice_numbering"]
        if (
            not self.instance.invoice_numbering
            and value == self.instance.invoice_numbering_in_force
        ):
            return ""  # still the country's default, not a choice the owner made
        return value

    def _post_clean(self):
        # The service saves; the form only validates, so a bad field changes nothing.
        pass


class ExchangeRateForm(forms.Form):
    """One unit of `currency` = `rate` units of the account's default currency."""

    currency = CurrencyField(
        label="Currency", widget=forms.TextInput(attrs={"placeholder": "e.g. eur"})
    )
    rate = forms.DecimalField(
        label="Rate",
        max_digits=20,
        decimal_places=10,
        min_value=0,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 1.085"}),
    )

    def __init__(self, *args, account: Account, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_currency(self):
        currency = self.cleaned_data["currency"]
        if currency == self.account.default_currency:
            raise forms.ValidationError("The default currency needs no exchange rate.")
        return currency

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if rate <= 0:
            raise forms.ValidationError("The rate must be greater than zero.")
        return rate


class ApiKeyForm(forms.Form):
    """The optional name of a new API key."""

    name = forms.CharField(
        label="Key name",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Accounting export"}),
    )


# -- Subscription, invoice and test-clock actions ----------------------------------------------


class DateTimeLocalField(forms.DateTimeField):
    """A date and time typed in the account's time zone (`<input type="datetime-local">`)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ResumeSubscriptionForm(forms.Form):
    """How a paused subscription's billing cycle restarts (SPEC R-TRIAL-8)."""

    billing_cycle_anchor = forms.ChoiceField(
        label="Billing cycle",
        choices=[
            ("now", "Start a new billing cycle today and invoice a full period now"),
            ("unchanged", "Keep the billing cycle and invoice the rest of this period, prorated"),
        ],
        initial="now",
        widget=forms.RadioSelect,
    )


class PauseCollectionForm(forms.Form):
    """What happens to the invoices created while payment collection is paused."""

    behavior = forms.ChoiceField(
        label="Invoices created meanwhile",
        choices=[
            ("keep_as_draft", "Keep them as drafts (collect nothing until collection resumes)"),
            ("mark_uncollectible", "Mark them uncollectible"),
            ("void", "Void them"),
        ],
        initial="keep_as_draft",
        widget=forms.RadioSelect,
    )


class TestClockForm(forms.Form):
    """A new test clock: a name and the time it starts frozen at."""

    __test__ = False  # not a pytest test class, whatever its name

    name = forms.CharField(
        label="Name",
        required=False,
        max_length=300,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Annual renewal rehearsal"}),
    )
    frozen_time = DateTimeLocalField(label="Frozen time")


class AdvanceClockForm(forms.Form):
    """Advance a test clock to a chosen date and time."""

    to = DateTimeLocalField(label="Advance to")


# Stripe's test cards and what the test gateway does with each (SPEC R-INV-10).
TEST_CARD_CHOICES = [
    ("4242424242424242", "4242 4242 4242 4242 — succeeds"),
    ("4000000000000002", "4000 0000 0000 0002 — declined"),
    ("4000000000009995", "4000 0000 0000 9995 — insufficient funds"),
    ("4000002500003155", "4000 0025 0000 3155 — requires authentication"),
    ("4000000000000341", "4000 0000 0000 0341 — attaches, then every charge fails"),
    ("", "No card"),
]


class PriceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, price):
        return f"{price.product.name} — {price}"


class ClockCustomerForm(forms.Form):
    """A customer on a test clock, with a test card and optionally a subscription."""

    email = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"placeholder": "jenny@example.com"})
    )
    name = forms.CharField(label="Name", required=False, max_length=256)
    card = forms.ChoiceField(
        label="Test card", choices=TEST_CARD_CHOICES, required=False, initial="4242424242424242"
    )
    price = PriceChoiceField(
        label="Subscribe to",
        queryset=None,
        required=False,
        empty_label="No subscription",
    )
    trial_days = forms.IntegerField(
        label="Trial days",
        required=False,
        min_value=1,
        max_value=730,
        widget=forms.NumberInput(attrs={"placeholder": "No trial"}),
    )

    def __init__(self, *args, prices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price"].queryset = prices

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("trial_days") and not cleaned.get("price"):
            self.add_error("trial_days", "A trial needs a price to subscribe to.")
        return cleaned


# -- Revenue recovery -------------------------------------------------------------------------

MAX_UPCOMING_RENEWAL_DAYS = 60


class RecoverySettingsForm(forms.Form):
    """An account's revenue-recovery settings for one mode (SPEC R-INV-6, R-INV-9, R-SUB-4)."""

    retry_mode = forms.ChoiceField(
        label="Retries", choices=RetryMode.choices, widget=forms.RadioSelect
    )
    retry_days = forms.CharField(
        label="Retry days",
        required=False,
        help_text=(
            "Custom schedule only: days between attempts, one number per retry, e.g. 3, 5, 7 "
            f"(at most {MAX_CUSTOM_RETRIES} retries, each 1–{MAX_RETRY_GAP_DAYS} days)."
        ),
        widget=forms.TextInput(attrs={"placeholder": "3, 5, 7", "inputmode": "numeric"}),
    )
    after_retries_subscription = forms.ChoiceField(
        label="Then the subscription",
        choices=AfterRetriesSubscription.choices,
        widget=forms.RadioSelect,
    )
    after_retries_invoice = forms.ChoiceField(
        label="And the invoice",
        choices=AfterRetriesInvoice.choices,
        widget=forms.RadioSelect,
    )
    upcoming_renewal_days = forms.IntegerField(
        label="Upcoming renewal events",
        min_value=0,
        max_value=MAX_UPCOMING_RENEWAL_DAYS,
        help_text=(
            "Send invoice.upcoming this many days before each renewal (0 turns it off). "
            "A change applies from the next billing period."
        ),
    )

    @classmethod
    def initial_from(cls, settings) -> dict:
        return {
            "retry_mode": settings.retry_mode,
            "retry_days": ", ".join(str(days) for days in settings.retry_days or []),
            "after_retries_subscription": settings.after_retries_subscription,
            "after_retries_invoice": settings.after_retries_invoice,
            "upcoming_renewal_days": settings.upcoming_renewal_days,
        }

    def clean_retry_days(self) -> list[int]:
        text = self.cleaned_data["retry_days"].strip()
        parts = [part for part in re.split(r"[,\s;]+", text) if part]
        if not all(part.isascii() and part.isdigit() for part in parts):
            raise forms.ValidationError("Enter whole numbers of days, separated by commas.")
        # The limits (count, days per gap) are the model's: RecoverySettings.clean().
        return [int(part) for part in parts]


# -- Webhooks -----------------------------------------------------------------------------------

# "5m", "1h", "2d" or plain seconds: how the retry-schedule field reads and writes wait times.
_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def format_delays(delays) -> str:
    """`[300, 3600]` → `"5m, 1h"`: a retry schedule as the endpoint form shows it."""
    parts = []
    for delay in delays or []:
        for unit in ("d", "h", "m"):
            if delay % _UNIT_SECONDS[unit] == 0:
                parts.append(f"{delay // _UNIT_SECONDS[unit]}{unit}")
                break
        else:
            parts.append(f"{delay}s")
    return ", ".join(parts)


class WebhookEndpointForm(forms.Form):
    """An endpoint's URL, the events it receives, its description, Connect flag and retries.

    The service validates the URL (scheme, and in live mode no private address) and the event
    types; the form only shapes the input.
    """

    url = forms.CharField(
        label="Endpoint URL",
        max_length=2048,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/relance"}),
    )
    description = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.TextInput(attrs={"placeholder": "What this endpoint is for"}),
    )
    all_events = forms.BooleanField(
        required=False,
        label="Send every event",
        help_text="Every event type, including ones added later.",
    )
    enabled_events = forms.MultipleChoiceField(
        required=False,
        label="Events to send",
        choices=[(name, name) for name in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple(attrs={"class": "event-choices"}),
    )
    connect = forms.BooleanField(
        required=False,
        label="Events of connected accounts",
        help_text="Receive your connected accounts' events instead of this account's.",
    )
    retry_schedule = forms.CharField(
        required=False,
        label="Retry schedule",
        max_length=500,
        help_text="Waits after each failed attempt, e.g. “5m, 1h, 6h, 1d”. "
        "Leave empty for the standard schedule.",
    )
    field_order = ["url", "description", "all_events", "enabled_events", "connect"]

    def __init__(self, *args, allow_connect=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not allow_connect:
            # Connected accounts have no connected accounts; and an endpoint keeps the audience
            # it was made for (Stripe fixes `connect` at creation too).
            del self.fields["connect"]

    @classmethod
    def initial_for(cls, endpoint) -> dict:
        """The form's initial values for an existing endpoint."""
        events = list(endpoint.enabled_events or [])
        return {
            "url": endpoint.url,
            "description": endpoint.description,
            "all_events": "*" in events,
            "enabled_events": [name for name in events if name != "*"],
            "connect": endpoint.connect,
            "retry_schedule": format_delays(endpoint.retry_schedule),
        }

    def clean_retry_schedule(self):
        text = (self.cleaned_data.get("retry_schedule") or "").strip()
        if not text:
            return []
        delays = []
        for part in filter(None, (piece.strip().lower() for piece in text.split(","))):
            match = _DURATION.match(part)
            if not match:
                raise forms.ValidationError(
                    f"“{part}” is not a wait time: write a number with s, m, h or d, e.g. 30m."
                )
            delays.append(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        return delays

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_events") and not cleaned.get("enabled_events"):
            self.add_error("enabled_events", "Choose at least one event, or send every event.")
        return cleaned

    def service_fields(self) -> dict:
        """The cleaned data as the webhook services take it."""
        data = self.cleaned_data
        fields = {
            "url": data["url"].strip(),
            "description": data.get("description") or "",
            "enabled_events": ["*"] if data.get("all_events") else list(data["enabled_events"]),
            "retry_schedule": data.get("retry_schedule") or [],
        }
        if "connect" in self.fields:
            fields["connect"] = bool(data.get("connect"))
        return fields


class WebhookEndpointFilterForm(ListFilterForm):
    """Webhook endpoints by status."""

    status = forms.ChoiceField(
        required=False,
        choices=_with_blank([("enabled", "Enabled"), ("disabled", "Disabled")]),
    )
    field_order = ["status", "created_from", "created_to"]

    def apply(self, queryset, data):
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        return queryset


class WebhookDeliveryFilterForm(ListFilterForm):
    """An endpoint's deliveries by status and event type (`invoice.*` for a family)."""

    status = forms.ChoiceField(
        required=False,
        choices=_with_blank(
            [("pending", "Pending"), ("succeeded", "Succeeded"), ("failed", "Failed")]
        ),
    )
    event_type = forms.CharField(
        required=False,
        label="Event type",
        max_length=100,
        widget=forms.TextInput(
            attrs={"placeholder": "invoice.paid or invoice.*", "list": "event-types"}
        ),
    )
    field_order = ["status", "event_type", "created_from", "created_to"]

    def apply(self, queryset, data):
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        event_type = (data.get("event_type") or "").strip()
        if event_type.endswith("*"):
            queryset = queryset.filter(event__type__startswith=event_type[:-1])
        elif event_type:
            queryset = queryset.filter(event__type=event_type)
        return queryset


class ReplayDeliveriesForm(forms.Form):
    """Send an endpoint's deliveries of a time range again: failed ones only, or all."""

    since = DateTimeLocalField(label="From")
    until = DateTimeLocalField(label="To")
    which = forms.ChoiceField(
        label="Deliveries",
        choices=[("failed", "Failed only"), ("all", "All, succeeded included")],
        initial="failed",
    )
    prefix = "replay"

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be after “From”.")
        return cleaned


class RollSecretForm(forms.Form):
    """How long the old signing secret keeps signing beside the new one."""

    overlap_hours = forms.TypedChoiceField(
        label="Old secret expires",
        coerce=int,
        choices=[(0, "Now"), (1, "In 1 hour"), (12, "In 12 hours"), (24, "In 24 hours")],
        initial=24,
    )
    prefix = "roll"
