"""Which account and mode a dashboard request works in."""

import zoneinfo

from django.utils import timezone

from billing.models import Membership

SESSION_ACCOUNT = "relance_account"
SESSION_LIVEMODE = "relance_livemode"


def current_membership(request):
    """The signed-in user's membership in the account chosen in the session (or their first)."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = (
        Membership.objects.filter(user=user).select_related("account").order_by("created", "pk")
    )
    chosen = request.session.get(SESSION_ACCOUNT)
    if chosen:
        membership = memberships.filter(account_id=chosen).first()
        if membership:
            return membership
    return memberships.first()


def _account_timezone(account):
    try:
        return zoneinfo.ZoneInfo(account.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class CurrentAccountMiddleware:
    """Sets `request.membership`, `request.account` and `request.livemode` for dashboard views.

    Test mode is the default: a user switches to live data on purpose (SPEC R-CORE-3).
    Requests without a session user (the API, hosted pages) get None and cost no query.
    Dates are shown in the account's time zone while a member works in it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        membership = current_membership(request)
        request.membership = membership
        request.account = membership.account if membership else None
        request.livemode = bool(request.session.get(SESSION_LIVEMODE, False))
        tz = _account_timezone(request.account) if request.account else None
        if tz is None:
            return self.get_response(request)
        with timezone.override(tz):
            return self.get_response(request)
