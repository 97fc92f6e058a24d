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
