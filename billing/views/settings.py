"""Account settings: details and branding, exchange rates, API keys, team.

Everyone in the account may look; only owners change anything or see API keys.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from billing import services
from billing.forms import AccountSettingsForm, ApiKeyForm, ExchangeRateForm
from billing.models import ApiKey, Membership
from billing.views.base import MemberRequiredMixin, get_scoped_or_404, scope


def render_settings(request, *, status=200, **forms):
    """The settings page, with any bound (invalid) form or fresh secret passed in."""
    account = request.account
    can_manage = request.membership.can_manage_account
    context = {
        "account": account,
        "can_manage": can_manage,
        "settings_form": forms.get("settings_form") or AccountSettingsForm(instance=account),
        "rate_form": forms.get("rate_form") or ExchangeRateForm(account=account),
        "key_form": forms.get("key_form") or ApiKeyForm(),
        "new_key": forms.get("new_key"),
        "new_secret": forms.get("new_secret"),
        "exchange_rates": account.exchange_rates.order_by("currency"),
        "members": Membership.objects.filter(account=account)
        .select_related("user")
        .order_by("created", "pk"),
    }
    if can_manage:
        # Keys of the current mode only: test and live never mix (SPEC R-CORE-3).
        context["api_keys"] = scope(request, ApiKey).order_by("-created", "-pk")
    return render(request, "dashboard/settings.html", context, status=status)


class SettingsView(MemberRequiredMixin, View):
    """The settings page: read-only for members, editable for owners."""

    def get(self, request):
        return render_settings(request)


class OwnerActionView(MemberRequiredMixin, View):
    """A POST-only settings change, for owners."""

    permission = "can_manage_account"
    http_method_names = ["post"]


def _apply_service_errors(form, error: ValidationError):
    """Show a service's field errors on the form, next to the fields they name."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


class AccountSettingsUpdateView(OwnerActionView):
    """Save the account form; invalid input re-renders the page and changes nothing."""

    def post(self, request):
        form = AccountSettingsForm(request.POST, instance=request.account)
        if form.is_valid():
            try:
                services.update_account_settings(request.account, **form.cleaned_data)
            except ValidationError as error:
                _apply_service_errors(form, error)
            else:
                messages.success(request, "Account settings saved.")
                return redirect("dashboard:settings")
        # Unsaved: reload so the page shows the stored values beside the errors.
        request.account.refresh_from_db()
        return render_settings(request, settings_form=form)


class ExchangeRateSetView(OwnerActionView):
    """Add or change one exchange rate."""

    def post(self, request):
        form = ExchangeRateForm(request.POST, account=request.account)
        if form.is_valid():
            try:
                rate = services.set_exchange_rate(request.account, **form.cleaned_data)
            except ValidationError as error:
                _apply_service_errors(form, error)
            else:
                messages.success(request, f"Exchange rate for {rate.currency.upper()} saved.")
                return redirect("dashboard:settings")
        return render_settings(request, rate_form=form)


class ExchangeRateRemoveView(OwnerActionView):
    """Forget one exchange rate."""

    def post(self, request, currency):
        if services.remove_exchange_rate(request.account, currency=currency):
            messages.success(request, f"Exchange rate for {currency.upper()} removed.")
        return redirect("dashboard:settings")


class ApiKeyCreateView(OwnerActionView):
    """Issue a key for the current mode and show its secret this once."""

    def post(self, request):
        form = ApiKeyForm(request.POST)
        if not form.is_valid():
            return render_settings(request, key_form=form)
        key, secret = services.issue_api_key(
            request.account, livemode=request.livemode, name=form.cleaned_data["name"]
        )
        # Rendered straight from the POST, never stored nor redirected through the session:
        # this response is the only place the secret ever appears.
        response = render_settings(request, new_key=key, new_secret=secret)
        response["Cache-Control"] = "no-store"
        return response


class ApiKeyRevokeView(OwnerActionView):
    """Revoke one of the account's keys of the current mode."""

    def post(self, request, pk):
        key = get_scoped_or_404(request, ApiKey, pk=pk)
        if key.is_active:
            services.revoke_api_key(key, at=timezone.now())
            messages.success(request, f"Key {key.redacted} revoked.")
        return redirect("dashboard:settings")
