"""Template context every dashboard page needs: account, mode, navigation."""

from django.urls import NoReverseMatch, reverse

from billing.choices import AccountType
from billing.middleware import is_acting

# The dashboard's navigation. An entry appears once its page exists, so later features add a
# URL name and the shell shows it; nothing links to a page that is not there.
NAVIGATION = [
    ("Overview", "dashboard:overview"),
    ("Customers", "dashboard:customers"),
    ("Subscriptions", "dashboard:subscriptions"),
    ("Invoices", "dashboard:invoices"),
    ("Events", "dashboard:events"),
    ("Automations", "automations:list"),
    ("Emails", "notifications:emails"),
    ("Webhooks", "dashboard:webhooks"),
    ("Test clocks", "dashboard:test_clocks"),
    ("Connected accounts", "dashboard:connected_accounts"),
    ("Settings", "dashboard:settings"),
]

# Entries only a platform has (SPEC R-CON-1): connected accounts have no accounts of their own.
PLATFORM_ONLY = frozenset({"dashboard:connected_accounts"})


def _navigation(path: str, *, platform: bool):
    items = []
    for label, name in NAVIGATION:
        if name in PLATFORM_ONLY and not platform:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        active = path.startswith(url) if url != "/" else path == "/"
        items.append({"label": label, "url": url, "active": active, "name": name})
    return items


def dashboard(request):
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    account = membership.account
    navigation = _navigation(request.path, platform=account.type == AccountType.PLATFORM)
    # Where a mode switch lands: the current section's first page, since a detail page of one
    # mode is a 404 in the other.
    section_url = next(
        (item["url"] for item in navigation if item["active"]), reverse("dashboard:overview")
    )
    return {
        "membership": membership,
        "current_account": account,
        "livemode": request.livemode,
        "navigation": navigation,
        "section_url": section_url,
        "user_memberships": request.user.memberships.select_related("account").order_by("created"),
        # A platform member working inside one of its connected accounts: the shell says so and
        # offers the way back (billing.middleware.acting_membership).
        "acting_platform": account.platform if is_acting(membership) else None,
    }
