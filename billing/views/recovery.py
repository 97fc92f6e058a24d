"""Settings → Revenue recovery: payment retries, what happens after the last one, and renewal
notices, per account and mode (SPEC R-INV-6, R-INV-9, R-SUB-4).

Everyone in the account may look; owners and finance change them.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views import View

from billing import services
from billing.choices import RetryMode
from billing.forms import RecoverySettingsForm
from billing.models.jobs import SMART_RETRY_DAYS
from billing.services.invoices import recovery_settings
from billing.views.base import MemberRequiredMixin


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def retries_in_words(days) -> str:
    """When each attempt of a retry schedule (days between attempts) happens, in words."""
    elapsed, total = [], 0
    for gap in days:
        total += gap
        elapsed.append(str(total))
    if not elapsed:
        return "one attempt when the invoice is finalized, and no retries"
    unit = "day" if elapsed == ["1"] else "days"
    return f"the first when the invoice is finalized, then retries {_join(elapsed)} {unit} after it"


def describe_schedule(days) -> str:
    """A retry schedule in words: how many attempts, over how long, and when."""
    days = list(days)
    if not days:
        return "One attempt when the invoice is finalized, and no retries."
    total = sum(days)
    return (
        f"{len(days) + 1} attempts within {total} day{'s' if total != 1 else ''}: "
        f"{retries_in_words(days)}."
    )


class RecoverySettingsView(MemberRequiredMixin, View):
    """The revenue-recovery settings of the current account and mode."""

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        if not request.membership.can_manage_billing:
            raise PermissionDenied("Your role does not allow this.")
        form = RecoverySettingsForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form=form, status=400)
        try:
            services.update_recovery_settings(
                request.account, livemode=request.livemode, **form.cleaned_data
            )
        except ValidationError as error:
            # The model's rules (SPEC R-INV-9 limits) report against the form's fields.
            form.add_error(None, error)
            return self.render_page(request, form=form, status=400)
        messages.success(request, "Revenue recovery settings saved.")
        return redirect("dashboard:recovery_settings")

    def render_page(self, request, *, form=None, status=200):
        current = recovery_settings(request.account, request.livemode)
        can_manage = request.membership.can_manage_billing
        if form is None and can_manage:
            form = RecoverySettingsForm(initial=RecoverySettingsForm.initial_from(current))
        context = {
            "current": current,
            "form": form,
            "can_manage": can_manage,
            "smart_schedule": retries_in_words(SMART_RETRY_DAYS),
            "current_schedule": describe_schedule(current.retry_schedule),
            "is_smart": current.retry_mode == RetryMode.SMART,
        }
        return render(request, "dashboard/settings_recovery.html", context, status=status)
