"""Finance actions on one object (cancel, void, retry a payment…): confirm, run a service, redirect.

Each action is declared once (`Action`): what its button says, when it applies, what the
confirmation page explains, and the service call it makes. `ObjectActionView` serves them all:
GET shows the confirmation page (no JS needed), POST runs the service and redirects back to the
object's page with a message (POST/redirect/GET). Only members who may manage billing (owners,
finance) see or use them.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.views import View

from billing.clocks import now_for
from billing.middleware import is_acting
from billing.services import connect
from billing.services.invoices import CardError
from billing.timeline import pending
from billing.views.base import MemberRequiredMixin, get_scoped_or_404

# What a due job is, in words (the kinds the engine schedules; others are spelled out).
JOB_LABELS = {
    "renewal": "Renewal",
    "trial_will_end": "Trial ending notice",
    "trial_end": "Trial ends",
    "upcoming_renewal": "Upcoming renewal notice",
    "incomplete_expiry": "Expires unless paid",
    "finalize_invoice": "Invoice finalization",
    "payment_retry": "Payment retry",
    "invoice_overdue": "Overdue notice",
}

# Service error keys as a finance user reads them.
ERROR_LABELS = {
    "__all__": "",
    "subscription": "Subscription",
    "invoice": "Invoice",
    "trial_end": "Trial end",
    "billing_cycle_anchor": "Billing cycle",
    "pause_collection[behavior]": "Pause collection",
    "payment_method": "Payment method",
    "test_clock": "Test clock",
    "frozen_time": "Time",
}


def job_label(kind: str) -> str:
    return JOB_LABELS.get(kind) or kind.replace("_", " ").capitalize()


def next_due(*objects, now) -> list[dict]:
    """The pending due jobs of `objects`, soonest first, as rows for the "Next due" card.

    `now` is the objects' clock time (a test clock's frozen time), so "in 3 days" is on it.
    """
    rows = []
    for obj in objects:
        for job in pending(obj):
            rows.append(
                {
                    "label": job_label(job.kind),
                    "kind": job.kind,
                    "due_at": job.due_at,
                    "on": obj,
                    "when": f"in {timeuntil(job.due_at, now)}" if job.due_at > now else "due now",
                }
            )
    return sorted(rows, key=lambda row: row["due_at"])


def error_messages(error: ValidationError) -> list[str]:
    """A service's ValidationError as sentences that name the field they are about."""
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    lines = []
    for field, errors in error.message_dict.items():
        label = ERROR_LABELS.get(field, field.replace("_", " ").capitalize())
        lines += [f"{label}: {message}" if label else message for message in errors]
    return lines


def errors_onto(form, error: ValidationError) -> None:
    """A service's field errors next to the form fields they name; the rest above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            for message in error_messages(ValidationError({field: errors})):
                form.add_error(None, message)


def local(moment) -> str:
    """A datetime as the dashboard writes it, in the account's time zone."""
    if moment is None:
        return "—"
    moment = timezone.localtime(moment)
    return f"{moment:%b} {moment.day}, {moment:%Y, %H:%M}"


@dataclass(frozen=True)
class Action:
    """One thing a finance user may do to an object, through one service call."""

    slug: str
    label: str  # the button on the object's page
    question: str  # the confirmation page's heading
    explain: Callable[[object], str]  # what will happen, shown before confirming
    confirm: str  # the confirming button
    run: Callable  # run(obj, cleaned_data) -> message, or (level, message)
    available: Callable[[object], bool] = lambda obj: True
    danger: bool = False
    form_class: type[forms.Form] | None = None


def actions_by_slug(*actions: Action) -> dict[str, Action]:
    return {action.slug: action for action in actions}


def platform_may_change(request, obj) -> bool:
    """SPEC R-CON-5: a platform member working inside a connected account may only change what
    the platform created there (`application`); the account's own members may change anything."""
    if not is_acting(request.membership):
        return True
    try:
        connect.check_platform_may_change(obj, request.account.platform)
    except ValidationError:
        return False
    return True


def available_actions(
    request, actions: dict[str, Action], obj, *, platform_created_only: bool = False
) -> list[Action]:
    """The actions to offer on `obj`'s page: none unless the member may manage billing (and,
    with `platform_created_only`, none to a platform on what it did not create)."""
    if not request.membership.can_manage_billing:
        return []
    if platform_created_only and not platform_may_change(request, obj):
        return []
    return [action for action in actions.values() if action.available(obj)]


class ObjectActionView(MemberRequiredMixin, View):
    """GET: confirm an action on one object of the account and mode; POST: run it."""

    permission = "can_manage_billing"
    model = None
    actions: dict[str, Action] = {}
    detail_url_name = ""
    noun = ""
    # SPEC R-CON-5: a platform acting inside a connected account may only act on the objects
    # it created there.
    platform_created_only = False

    def setup_action(self, pk, action):
        self.object = get_scoped_or_404(self.request, self.model, pk=pk)
        try:
            self.action = self.actions[action]
        except KeyError:
            raise Http404(f"No action {action!r}.") from None
        self.detail_url = reverse(self.detail_url_name, args=[self.object.pk])

    def get(self, request, pk, action):
        self.setup_action(pk, action)
        if not self.action.available(self.object) or (
            self.platform_created_only and not platform_may_change(request, self.object)
        ):
            messages.warning(
                request, f"“{self.action.label}” does not apply to this {self.noun} now."
            )
            return redirect(self.detail_url)
        form = self.action.form_class() if self.action.form_class else None
        return self.render_confirm(form)

    def post(self, request, pk, action):
        self.setup_action(pk, action)
        if self.platform_created_only and not platform_may_change(request, self.object):
            messages.error(
                request,
                f"Your platform cannot modify this {self.noun}: it was not created by your "
                "platform.",
            )
            return redirect(self.detail_url)
        data = {}
        if self.action.form_class:
            form = self.action.form_class(request.POST)
            if not form.is_valid():
                return self.render_confirm(form, status=400)
            data = form.cleaned_data
        try:
            outcome = self.action.run(self.object, data)
        except ValidationError as error:
            for line in error_messages(error):
                messages.error(request, line)
        except CardError as error:
            messages.error(request, f"Payment failed: {error}")
        else:
            level, text = outcome if isinstance(outcome, tuple) else ("success", outcome)
            getattr(messages, level)(request, text)
        return redirect(self.detail_url)

    def render_confirm(self, form, status=200):
        context = {
            "object": self.object,
            "action": self.action,
            "explanation": self.action.explain(self.object),
            "form": form,
            "detail_url": self.detail_url,
            "noun": self.noun,
            "clock_now": now_for(self.object) if self.object.test_clock_id else None,
        }
        return render(self.request, "dashboard/confirm.html", context, status=status)
