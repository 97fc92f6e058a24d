"""Which account and mode a dashboard request works in."""

import zoneinfo

from django.utils import timezone

from billing.choices import AccountType
from billing.models import Account, Membership

SESSION_ACCOUNT = "relance_account"
SESSION_LIVEMODE = "relance_livemode"


def _platform_memberships(user, connected_id, **connected_lookups):
    """The user's membership in the platform that `connected_id` is a connected account of.

    `connected_lookups` narrow that connected account; they go in the same `filter()` call, so
    they apply to the same related row.
    """
    prefix = "account__connected_accounts__"
    lookups = {prefix + key: value for key, value in connected_lookups.items()}
    return Membership.objects.filter(
        user=user,
        account__type=AccountType.PLATFORM,
        account__connected_accounts__pk=connected_id,
        **lookups,
    ).select_related("account")


def acting_membership(user, account_id) -> Membership | None:
    """A platform member's place inside one of the platform's connected accounts, or None.

    Owners, finance and support of a platform (`can_write`) may work inside its connected
    accounts with the role they hold on the platform, without a Membership row there: the
    answer is an unsaved Membership (`pk` None) that the dashboard treats like any other.
    Read-only platform members only see the connected-accounts pages, not the accounts' own
    customers. A disconnected account is closed to the platform (SPEC R-CON-7).
    """
    if not account_id or not user.is_authenticated:
        return None
    platform_membership = _platform_memberships(
        user, account_id, deauthorized_at__isnull=True
    ).first()
    if platform_membership is None or not platform_membership.can_write:
        return None
    connected = Account.objects.get(pk=account_id)
    connected.platform = platform_membership.account  # known already: no query for the shell
    return Membership(user=user, account=connected, role=platform_membership.role)


def is_acting(membership) -> bool:
    """Whether `membership` is a platform member working inside a connected account."""
    return membership is not None and membership.pk is None


def current_membership(request):
    """The signed-in user's membership in the account chosen in the session (or their first).

    The chosen account may also be a connected account of a platform the user works in (see
    `acting_membership`). When it no longer may be (it disconnected, or the user's platform
    role changed), the user is back in that platform rather than in whichever account is first.
    """
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
        acting = acting_membership(user, chosen)
        if acting is not None:
            return acting
        platform_membership = _platform_memberships(user, chosen).first()
        if platform_membership is not None:
            return platform_membership
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
    `request.membership` may be unsaved: a platform member inside a connected account
    (`acting_membership`); use its role and account, never its `pk`.
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
