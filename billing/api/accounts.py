"""/v1/accounts and /v1/account: a platform's connected accounts (SPEC R-CON-1).

A platform creates, lists, retrieves and updates its connected accounts; they are
platform-controlled (Stripe's `custom` accounts: `controller.type=application`). `GET
/v1/account` is the account the request acts as (the connected one under `Stripe-Account`).
Settings map onto the account's fields: `business_profile[name]` → name,
`settings[dashboard][display_name|timezone]`, `settings[branding][primary_color|logo]`.
"""

import re

from billing import services
from billing.api import lists
from billing.api.auth import no_access, redacted_key
from billing.api.base import ApiView, checked_metadata
from billing.api.errors import ApiError, invalid
from billing.api.params import Enum, Hash, Metadata, Schema, String, Unsupported
from billing.choices import AccountType
from billing.models import Account
from billing.services import connect
from billing.services.catalog import _merged_metadata

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# The colour an account has until one is chosen ("" sets it back).
DEFAULT_PRIMARY_COLOR = Account._meta.get_field("branding_primary_color").default

SETTINGS_FIELDS = {
    "email": String(max_length=254),
    "default_currency": String(max_length=3),
    "business_profile": Hash(
        {"name": String(max_length=200)},
        blank=False,
    ),
    "settings": Hash(
        {
            "dashboard": Hash(
                {"display_name": String(max_length=200), "timezone": String(max_length=64)},
                blank=False,
            ),
            "branding": Hash(
                {
                    "primary_color": String(max_length=7),
                    # Stripe takes a file id; Relance keeps the logo's URL.
                    "logo": String(max_length=200),
                    "icon": Unsupported("Set settings[branding][logo]."),
                    "secondary_color": Unsupported(),
                },
                blank=False,
            ),
        },
        blank=False,
    ),
    "metadata": Metadata(),
}

# Service errors are keyed by model field; the API names Stripe's parameters.
PARAM_ALIASES = {
    "name": "business_profile[name]",
    "branding_display_name": "settings[dashboard][display_name]",
    "timezone": "settings[dashboard][timezone]",
    "branding_primary_color": "settings[branding][primary_color]",
    "branding_logo_url": "settings[branding][logo]",
    "account": None,
}


def _not_a_platform(account: Account) -> ApiError:
    return ApiError(
        f"Only a platform can create or list connected accounts; {account.id} is a connected "
        "account.",
        status=400,
    )


def _settings(params: dict) -> dict:
    """The account fields the Stripe parameters given set (only those sent)."""
    fields = {}
    if "email" in params:
        fields["email"] = params["email"].strip()
    if "default_currency" in params:
        fields["default_currency"] = params["default_currency"].strip().lower()
    profile = params.get("business_profile") or {}
    if "name" in profile:
        fields["name"] = profile["name"].strip()
    settings = params.get("settings") or {}
    dashboard = settings.get("dashboard") or {}
    if "display_name" in dashboard:
        fields["branding_display_name"] = dashboard["display_name"].strip()
    if "timezone" in dashboard:
        fields["timezone"] = dashboard["timezone"].strip()
    branding = settings.get("branding") or {}
    if "primary_color" in branding:
        color = branding["primary_color"].strip()
        if color and not HEX_COLOR.match(color):
            raise invalid(
                "settings[branding][primary_color]",
                "Invalid color: settings[branding][primary_color] must be a hex color such as "
                "#4f46e5.",
            )
        fields["branding_primary_color"] = color or DEFAULT_PRIMARY_COLOR
    if "logo" in branding:
        fields["branding_logo_url"] = branding["logo"].strip()
    return fields


def _acting_as_platform(ctx) -> Account:
    """The platform whose connected accounts the request manages (the account it acts as)."""
    if ctx.account.type != AccountType.PLATFORM:
        raise _not_a_platform(ctx.account)
    return ctx.account


def connected_accounts_of(platform: Account):
    """The platform's connected accounts that are still connected (SPEC R-CON-7: a
    disconnected account is no longer the platform's to read)."""
    return Account.objects.filter(
        platform=platform, type=AccountType.CONNECTED, deauthorized_at__isnull=True
    )


def _readable(ctx, account_id: str) -> Account:
    """The account the request acts as, or one of its connected accounts; else Stripe's 403."""
    if account_id == ctx.account.id:
        return ctx.account
    found = None
    if ctx.account.type == AccountType.PLATFORM and "\x00" not in account_id:
        found = connected_accounts_of(ctx.account).filter(pk=account_id).first()
    if found is None:
        raise no_access(redacted_key(ctx.api_key), account_id)
    return found


class AccountsView(ApiView):
    """Create and list the platform's connected accounts."""

    post_params = Schema(
        {
            # Every connected account is platform-controlled (rendered as `custom`).
            "type": Enum("custom", "express", "standard"),
            "country": String(max_length=2),
            **SETTINGS_FIELDS,
            "capabilities": Unsupported(
                "Connected accounts take card payments and receive transfers from creation."
            ),
            "controller": Unsupported("Connected accounts are controlled by their platform."),
        }
    )
    get_params = Schema(lists.LIST_FIELDS)
    param_aliases = PARAM_ALIASES

    def post(self, ctx, params):
        platform = _acting_as_platform(ctx)
        fields = _settings(params)
        if "country" in params:
            country = params["country"].strip()
            if not COUNTRY.match(country):
                raise invalid("country", "Invalid country: use a two-letter ISO code, as US.")
            fields["country"] = country.upper()
        if params.get("metadata"):
            metadata = checked_metadata(params["metadata"])
            # Stripe does not set keys given empty values.
            fields["metadata"] = {key: value for key, value in metadata.items() if value != ""}
        return connect.create_connected_account(platform, **fields)

    def get(self, ctx, params):
        platform = _acting_as_platform(ctx)
        accounts = connected_accounts_of(platform)
        return lists.page(accounts, params, url="/v1/accounts", object_label="account")


class AccountView(ApiView):
    """Retrieve and update one connected account (or retrieve the caller's own)."""

    get_params = Schema()
    post_params = Schema(SETTINGS_FIELDS)
    param_aliases = PARAM_ALIASES

    def get(self, ctx, params, account_id):
        return _readable(ctx, account_id)

    def post(self, ctx, params, account_id):
        account = _readable(ctx, account_id)
        if account.platform_id is None or account.platform_id != ctx.api_key.account_id:
            # Only the platform controls a connected account's settings through the API.
            raise ApiError(
                f"The account {account.id} is not a connected account your platform controls; "
                "change your own account's settings in the dashboard.",
                status=403,
            )
        fields = _settings(params)
        if "metadata" in params:
            fields["metadata"] = _merged_metadata(account.metadata, params["metadata"])
        if not fields:
            return account
        return services.update_account_settings(account, **fields)


class CurrentAccountView(ApiView):
    """`GET /v1/account`: the account the request acts as."""

    get_params = Schema()

    def get(self, ctx, params):
        return ctx.account


__all__ = ["AccountView", "AccountsView", "CurrentAccountView", "connected_accounts_of"]
