"""The runs list's filter form (SPEC R-AUTO-8), built like the dashboard's list filters."""

import re

from django import forms
from django.db.models import Q

from automations.choices import RunStatus
from automations.models import Automation
from billing.forms import ListFilterForm

_ID_PATTERN = re.compile(r"^[a-z]+_[0-9A-Za-z]+$")


class RunFilterForm(ListFilterForm):
    """Runs by customer email or id, status, automation and start date.

    `automations` is what the automation field may choose from: the account's automations in
    the page's mode, so another account's or mode's automation id is an invalid choice (reported
    inline and ignored, as every invalid filter is). The date range filters `created`, which
    the runs list annotates as the run's `started_at`.
    """

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Customer email or id"}),
    )
    status = forms.ChoiceField(required=False, choices=[("", "All"), *RunStatus.choices])
    automation = forms.ModelChoiceField(
        queryset=Automation.objects.none(), required=False, empty_label="All"
    )
    field_order = ["q", "status", "automation", "created_from", "created_to"]

    def __init__(self, *args, automations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["automation"].queryset = automations.order_by("name", "pk")
        self.fields["created_from"].label = "Started from"
        self.fields["created_to"].label = "Started to"

    def clean(self):
        # ListFilterForm.clean's range check, with this form's labels in its message.
        cleaned = forms.Form.clean(self)
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "Must be on or after “Started from”.")
        return cleaned

    def apply(self, queryset, data):
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        if data.get("automation"):
            queryset = queryset.filter(automation=data["automation"])
        q = (data.get("q") or "").strip()
        if q:
            match = Q(customer__email__icontains=q)
            if _ID_PATTERN.match(q):
                match |= Q(pk=q) | Q(customer_id=q) | Q(object_id=q)
            queryset = queryset.filter(match)
        return queryset
