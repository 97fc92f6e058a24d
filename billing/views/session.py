"""Switching mode (test ↔ live) and account, kept in the session."""

from django.http import Http404
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from billing.middleware import SESSION_ACCOUNT, SESSION_LIVEMODE, acting_membership
from billing.views.base import MemberRequiredMixin


def _next_url(request, default="dashboard:overview"):
    url = request.POST.get("next", "")
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default


class ModeSwitchView(MemberRequiredMixin, View):
    """Toggle test/live (or set it with `livemode=1|0`) and go back to the section's list."""

    http_method_names = ["post"]

    def post(self, request):
        wanted = request.POST.get("livemode")
        livemode = (wanted == "1") if wanted in {"0", "1"} else not request.livemode
        request.session[SESSION_LIVEMODE] = livemode
        return redirect(_next_url(request))


class AccountSwitchView(MemberRequiredMixin, View):
    """Work in another account: one the user is a member of, or a still-connected connected
    account of a platform where they may act for it (`acting_membership`: owners, finance and
    support, keeping their platform role). Any other id is a 404. Lands on `next` when it is a
    page of this site (back from a connected account to its page on the platform), else on the
    overview."""

    http_method_names = ["post"]

    def post(self, request):
        account_id = request.POST.get("account", "")
        member = request.user.memberships.filter(account_id=account_id).exists()
        if not member and acting_membership(request.user, account_id) is None:
            raise Http404("You may not work in that account.")
        request.session[SESSION_ACCOUNT] = account_id
        return redirect(_next_url(request))
