"""Dashboard forms: the email settings and the email-log filters."""

from django import forms
from django.db.models import Q

from billing.forms import ListFilterForm, _looks_like_id, _with_blank
from notifications.choices import EmailKind, EmailStatus
from notifications.models import EmailSettings
from notifications.services.settings import EDITABLE_FIELDS

HELP = {
    "invoice_reminder_days": "Days after the due date, then between reminders (1–30).",
    "invoice_reminder_count": "At most this many reminders per invoice (1–10).",
    "payment_action_reminder_days": "Days between reminders until the payment is confirmed "
    "or expires (1–30).",
    "verified_domain": "Test mode sends customer emails only to this domain and to your team "
    "members (e.g. example.com).",
}


def _url_field(label: str, placeholder: str) -> forms.URLField:
    return forms.URLField(
        required=False,
        label=label,
        assume_scheme="https",
        max_length=200,
        help_text="Used when the link leads to your own page.",
        widget=forms.URLInput(attrs={"placeholder": placeholder}),
    )


class EmailSettingsForm(forms.ModelForm):
    """The settings of one account and mode; the model's rules report against their fields."""

    payment_link_url = _url_field("Your payment-update page", "https://example.com/billing")
    manage_link_url = _url_field("Your subscription-management page", "https://example.com/account")

    class Meta:
        model = EmailSettings
        fields = EDITABLE_FIELDS
        labels = {
            "invoice_reminder_days": "Reminder every (days)",
            "invoice_reminder_count": "Number of reminders",
            "payment_action_reminder_days": "Reminder every (days)",
            "payment_link_destination": "Payment-update link leads to",
            "manage_link_destination": "Subscription-management link leads to",
            "verified_domain": "Verified domain",
        }
        help_texts = HELP
        widgets = {
            "payment_link_destination": forms.RadioSelect,
            "manage_link_destination": forms.RadioSelect,
            "verified_domain": forms.TextInput(attrs={"placeholder": "example.com"}),
        }

    def __init__(self, *args, livemode: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if livemode:
            # R-MAIL-8 restricts test mode only: live mode has no verified domain to set.
            del self.fields["verified_domain"]


class EmailLogFilterForm(ListFilterForm):
    """Emails by kind, status and customer (email fragment or id), and date."""

    kind = forms.ChoiceField(required=False, choices=_with_blank(EmailKind.choices))
    status = forms.ChoiceField(required=False, choices=_with_blank(EmailStatus.choices))
    customer = forms.CharField(
        required=False,
        max_length=254,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Email or cus_…"}),
    )
    field_order = ["kind", "status", "customer", "created_from", "created_to"]

    def apply(self, queryset, data):
        if data.get("kind"):
            queryset = queryset.filter(kind=data["kind"])
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        customer = (data.get("customer") or "").strip()
        if customer:
            match = Q(to__icontains=customer) | Q(customer__email__icontains=customer)
            if _looks_like_id(customer):
                match |= Q(customer_id=customer) | Q(object_id=customer) | Q(pk=customer)
            queryset = queryset.filter(match)
        return queryset


# ---- hosted pages ---------------------------------------------------------------------------

# Stripe's card parameters, as `billing.services.customers.add_card` reports them, and the
# fields of the hosted card form they belong to.
CARD_PARAMS = {
    "card[number]": "number",
    "card[exp_month]": "exp_month",
    "card[exp_year]": "exp_year",
    "card[cvc]": "cvc",
}


class CardForm(forms.Form):
    """The card a customer enters on the hosted payment page (test numbers in test mode).

    Only the shape is checked here; `add_card` validates the card as Stripe does and its errors
    come back on these fields (`add_card_errors`). The number is never stored.
    """

    number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "placeholder": "1234 1234 1234 1234",
            }
        ),
    )
    exp_month = forms.IntegerField(
        label="Expiration month",
        min_value=1,
        max_value=12,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "placeholder": "MM"}),
    )
    exp_year = forms.IntegerField(
        label="Expiration year",
        min_value=0,
        max_value=9999,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "placeholder": "YYYY"}),
    )
    cvc = forms.CharField(
        label="CVC",
        max_length=4,
        min_length=3,
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123"}
        ),
    )

    def clean_number(self):
        number = "".join(self.cleaned_data["number"].split()).replace("-", "")
        if not number.isascii() or not number.isdigit():
            raise forms.ValidationError("Your card number is incorrect.")
        return number

    def clean_cvc(self):
        cvc = self.cleaned_data["cvc"].strip()
        if not cvc.isascii() or not cvc.isdigit():
            raise forms.ValidationError("Your card's security code is invalid.")
        return cvc

    def card(self) -> dict:
        """The `card` parameter of `add_card`."""
        data = self.cleaned_data
        return {
            "number": data["number"],
            "exp_month": data["exp_month"],
            "exp_year": data["exp_year"],
            "cvc": data["cvc"],
        }

    def add_card_errors(self, error) -> None:
        """Put the ValidationError `add_card` raised on the fields it names."""
        for param, messages in getattr(error, "message_dict", {"card": error.messages}).items():
            field = CARD_PARAMS.get(param)
            for message in messages:
                self.add_error(field, message)


class ManageForm(forms.Form):
    """One action on the hosted management page; nothing happens until it is confirmed."""

    ACTIONS = {
        "cancel": "Cancel at the end of the period",
        "undo_cancel": "Keep my subscription",
        "resume": "Resume my subscription",
    }

    action = forms.ChoiceField(choices=list(ACTIONS.items()))
    billing_cycle_anchor = forms.ChoiceField(
        required=False,
        label="Billing",
        choices=[
            ("now", "Start a new billing period today"),
            ("unchanged", "Keep my billing date (pay for the rest of this period)"),
        ],
    )
    confirm = forms.BooleanField(required=False)
