"""Dashboard forms: list filters (each knows how to filter a queryset) and settings forms."""

import datetime
import re

from django import forms
from django.db.models import Q
from django.utils import timezone

from billing import events
from billing.choices import CollectionMethod, InvoiceStatus, SubscriptionStatus
from billing.models import Account
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

    class Meta:
        model = Account
        fields = [
            "name",
            "default_currency",
            "timezone",
            "branding_display_name",
            "branding_logo_url",
            "branding_primary_color",
        ]
        labels = {
            "name": "Account name",
            "branding_display_name": "Display name",
        }
        help_texts = {"branding_display_name": "Shown to customers in emails and hosted pages."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = [(tz, tz) for tz in known_timezones()]

    def clean_timezone(self):
        value = self.cleaned_data["timezone"]
        validate_timezone(value)
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
