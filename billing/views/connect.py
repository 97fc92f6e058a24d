"""Connect for platforms: their connected accounts, with what flows between them (SPEC R-CON-*).

A platform's members see its connected accounts in the current mode: how many subscriptions
each carries (its own, "direct", and the platform's that transfer to it or are `on_behalf_of`
it), the fees the platform collected from it, what it transferred to it, and its balance.

Who may do what:
- every member of the platform may look at these pages: figures (counts, amounts), and the
  platform's own subscriptions and invoices that concern an account. The connected account's
  own customers are the connected merchant's data: who they are (emails, names) shows only to
  members who may switch into the account, and only while it is connected (`may_see_customers`);
- owners create connected accounts, and disconnect or reconnect them (SPEC R-CON-7), since
  that changes how money settles between the accounts;
- owners, finance and support may switch into a still-connected account's dashboard and work
  there with their platform role (`billing.middleware.acting_membership`). Read-only members
  may not: the accounts' customers are the connected merchants' data, not the platform's.

These pages exist only while working in a platform: inside a connected account they are 404s,
as is another platform's connected account.
"""

import re
from collections import defaultdict

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, Sum
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from billing.choices import (
    AccountType,
    CollectionMethod,
    InvoiceStatus,
    SubscriptionStatus,
)
from billing.forms import CurrencyField, ListFilterForm
from billing.models import (
    Account,
    ApplicationFee,
    BalanceTransaction,
    Invoice,
    Subscription,
    Transfer,
)
from billing.models.base import in_mode
from billing.money import format_amount
from billing.services import connect as connect_services
from billing.views.actions import error_messages, errors_onto
from billing.views.base import ListView, MemberRequiredMixin

# How many rows of each related list a connected account's page shows (newest first).
RELATED_LIMIT = 10

# Subscriptions that no longer invoice anyone: not counted as "on" an account.
ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)

_ID = re.compile(r"^acct_[0-9A-Za-z]+$")


# --- forms -----------------------------------------------------------------------------------


class ConnectedAccountFilterForm(ListFilterForm):
    """Connected accounts by name, email or exact id, and by connection status."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, email or acct_…"}),
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "All"), ("connected", "Connected"), ("disconnected", "Disconnected")],
    )
    field_order = ["q", "status", "created_from", "created_to"]

    def apply(self, queryset, data):
        if data.get("status") == "connected":
            queryset = queryset.filter(deauthorized_at__isnull=True)
        elif data.get("status") == "disconnected":
            queryset = queryset.filter(deauthorized_at__isnull=False)
        q = (data.get("q") or "").strip()
        if q:
            match = (
                Q(name__icontains=q) | Q(email__icontains=q) | Q(branding_display_name__icontains=q)
            )
            if _ID.match(q):
                match |= Q(pk=q)
            queryset = queryset.filter(match)
        return queryset


class ConnectedAccountForm(forms.Form):
    """A new connected account: who it is and the currency it bills in by default."""

    name = forms.CharField(label="Name", max_length=200)
    email = forms.EmailField(label="Email", required=False, max_length=254)
    country = forms.RegexField(
        label="Country",
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        help_text="Two-letter ISO code, e.g. US, FR, DE",
        error_messages={"invalid": "Enter a two-letter country code, e.g. US."},
    )
    default_currency = CurrencyField(label="Default currency", help_text="e.g. usd, eur, jpy")

    def clean_country(self):
        return self.cleaned_data["country"].upper()


# --- figures ---------------------------------------------------------------------------------


def formatted(amounts: dict[str, int]) -> list[str]:
    """`{"usd": 1200, "eur": 500}` → `["€5.00", "$12.00"]`, by currency code."""
    return [format_amount(amount, currency) for currency, amount in sorted(amounts.items())]


def _sums_by(queryset, key: str, amount: str) -> dict[str, dict[str, int]]:
    """Per value of `key`: the sum of `amount` per currency, in one grouped query."""
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    rows = queryset.order_by().values(key, "currency").annotate(total=Sum(amount))
    for row in rows:
        totals[row[key]][row["currency"]] = row["total"]
    return totals


def account_figures(platform: Account, accounts: list[Account], livemode: bool) -> None:
    """Set each connected account's figures in one mode, with a fixed number of queries:
    subscriptions on it and pointing at it (not ended), fees the platform collected from it,
    amounts transferred to it, and its balance."""
    ids = [account.pk for account in accounts]
    mode = in_mode(livemode)
    running = Subscription.objects.filter(mode).exclude(status__in=ENDED).order_by()
    direct = dict(
        running.filter(account_id__in=ids)
        .values("account_id")
        .annotate(n=Count("pk"))
        .values_list("account_id", "n")
    )
    # A subscription may both transfer to and be on behalf of the same account: count it once.
    pointing: dict[str, int] = defaultdict(int)
    pairs = (
        running.filter(account=platform)
        .filter(Q(transfer_data_destination_id__in=ids) | Q(on_behalf_of_id__in=ids))
        .values("transfer_data_destination_id", "on_behalf_of_id")
        .annotate(n=Count("pk"))
    )
    for row in pairs:
        for pk in {row["transfer_data_destination_id"], row["on_behalf_of_id"]} & set(ids):
            pointing[pk] += row["n"]
    fees = _sums_by(
        ApplicationFee.objects.filter(mode, account=platform, connected_account_id__in=ids),
        "connected_account_id",
        "amount",
    )
    transfers = _sums_by(
        Transfer.objects.filter(mode, account=platform, destination_id__in=ids),
        "destination_id",
        "amount",
    )
    balances = _sums_by(
        BalanceTransaction.objects.filter(mode, account_id__in=ids), "account_id", "net"
    )
    for account in accounts:
        account.direct_count = direct.get(account.pk, 0)
        account.platform_count = pointing.get(account.pk, 0)
        account.fees = formatted(fees.get(account.pk, {}))
        account.transferred = formatted(transfers.get(account.pk, {}))
        account.balance = formatted(balances.get(account.pk, {}))


def _mode_counts(queryset) -> dict[str, int]:
    """How many rows in each mode and in all: `{"live": 2, "test": 1, "total": 3}`."""
    counts = {"live": 0, "test": 0}
    for row in queryset.order_by().values("livemode").annotate(n=Count("pk")):
        counts["live" if row["livemode"] else "test"] = row["n"]
    counts["total"] = counts["live"] + counts["test"]
    return counts


def count_text(counts: dict[str, int], noun: str) -> str:
    """`3 subscriptions (2 in live mode, 1 in test mode)`, or `no subscriptions`."""
    total = counts["total"]
    if not total:
        return f"no {noun}s"
    text = f"{total} {noun}{'s' if total != 1 else ''}"
    return f"{text} ({counts['live']} in live mode, {counts['test']} in test mode)"


def disconnect_consequences(account: Account) -> dict[str, dict[str, int]]:
    """What a disconnection touches (SPEC R-CON-7), counted over both modes: it is one
    connection for live and test data alike. Ended subscriptions are not counted."""
    running = Subscription.objects.exclude(status__in=ENDED)
    direct = running.filter(account=account)
    platform_subscriptions = running.filter(account_id=account.platform_id)
    return {
        "direct": _mode_counts(direct),
        "direct_fee": _mode_counts(direct.filter(application_fee_percent__isnull=False)),
        "destination": _mode_counts(
            platform_subscriptions.filter(transfer_data_destination=account)
        ),
        "held": _mode_counts(
            platform_subscriptions.filter(
                on_behalf_of=account, collection_method=CollectionMethod.CHARGE_AUTOMATICALLY
            )
        ),
    }


def held_invoices(account: Account):
    """The renewal drafts held while `account` is disconnected; reconnecting releases them
    (the same invoices `reconnect_account` releases)."""
    return Invoice.objects.filter(
        on_behalf_of=account, status=InvoiceStatus.DRAFT, awaiting_reconnection=True
    )


# --- views -----------------------------------------------------------------------------------


class PlatformMixin(MemberRequiredMixin):
    """Pages of a platform: a 404 while working in a connected account."""

    def dispatch(self, request, *args, **kwargs):
        membership = getattr(request, "membership", None)
        if (
            request.user.is_authenticated
            and membership is not None
            and request.account.type != AccountType.PLATFORM
        ):
            raise Http404("Only a platform has connected accounts.")
        return super().dispatch(request, *args, **kwargs)

    def connected_accounts(self):
        return Account.objects.filter(platform=self.request.account, type=AccountType.CONNECTED)

    def get_connected_or_404(self, pk) -> Account:
        """One of this platform's connected accounts; another platform's is a 404."""
        account = self.connected_accounts().filter(pk=pk).first()
        if account is None:
            raise Http404("No such connected account on this platform.")
        account.platform = self.request.account
        return account


class ConnectedAccountListView(PlatformMixin, ListView):
    """The platform's balance, its connected accounts with their figures in this mode, and a
    form for a new connected account (owners)."""

    model = Account
    filter_form_class = ConnectedAccountFilterForm
    template_name = "dashboard/connect/list.html"
    table_template = "dashboard/connect/_table.html"
    title = "Connected accounts"
    create_form = None

    def get_queryset(self):
        return self.connected_accounts()

    def paginate(self, queryset, base):
        page = super().paginate(queryset, base)
        account_figures(self.request.account, page.items, self.request.livemode)
        return page

    def get_context(self):
        platform = self.request.account
        return {
            "platform_balance": formatted(
                connect_services.balance(platform, self.request.livemode)
            ),
            "can_create": self.request.membership.can_manage_account,
            "can_switch": self.request.membership.can_write,
            "create_form": self.create_form
            or ConnectedAccountForm(
                initial={
                    "country": platform.country,
                    "default_currency": platform.default_currency,
                }
            ),
        }

    def post(self, request):
        """Create a connected account (owners); its page then offers to switch into it."""
        if not request.membership.can_manage_account:
            raise PermissionDenied("Your role does not allow this.")
        form = ConnectedAccountForm(request.POST)
        if form.is_valid():
            try:
                account = connect_services.create_connected_account(
                    request.account,
                    # Its dates read like the platform's until its own team changes it.
                    timezone=request.account.timezone,
                    **form.cleaned_data,
                )
            except ValidationError as error:
                errors_onto(form, error)
            else:
                messages.success(
                    request,
                    f"Connected account {account.display_name} created. Switch into it to add "
                    "its customers, prices and subscriptions.",
                )
                return redirect("dashboard:connected_account_detail", account.pk)
        self.create_form = form
        response = self.get(request)
        response.status_code = 400
        return response


def may_see_customers(membership, account: Account) -> bool:
    """Whether a platform member may see who `account`'s own customers are: the members who
    may work inside it (not read-only ones), while it is connected. Others see figures only."""
    return bool(membership.can_write) and not account.is_disconnected


class ConnectedAccountDetailView(PlatformMixin, View):
    """One connected account: settings, balance, subscriptions on it and pointing at it, the
    fees collected from it, the transfers to it and the invoices held while it is disconnected
    (all in this mode), with switch-into and disconnect/reconnect. The subscriptions on it name
    their customers only to members who may see them (`may_see_customers`)."""

    def get(self, request, pk):
        account = self.get_connected_or_404(pk)
        platform = request.account
        mode = in_mode(request.livemode)
        account_figures(platform, [account], request.livemode)
        show_customers = may_see_customers(request.membership, account)
        direct = Subscription.objects.filter(mode, account=account).order_by("-created", "-pk")
        if show_customers:
            direct = direct.select_related("customer")
        pointing = (
            Subscription.objects.filter(mode, account=platform)
            .filter(Q(transfer_data_destination=account) | Q(on_behalf_of=account))
            .select_related("customer")
            .order_by("-created", "-pk")
        )
        fees = (
            ApplicationFee.objects.filter(mode, account=platform, connected_account=account)
            .select_related("invoice")
            .order_by("-created", "-pk")
        )
        transfers = (
            Transfer.objects.filter(mode, account=platform, destination=account)
            .select_related("invoice")
            .order_by("-created", "-pk")
        )
        held = (
            held_invoices(account)
            .filter(mode, account=platform)
            .select_related("customer")
            .order_by("-created", "-pk")
        )
        context = {
            "account": account,
            "direct": list(direct[:RELATED_LIMIT]),
            "direct_total": direct.count(),
            "pointing": list(pointing[:RELATED_LIMIT]),
            "pointing_total": pointing.count(),
            "fees": list(fees[:RELATED_LIMIT]),
            "transfers": list(transfers[:RELATED_LIMIT]),
            "held": list(held[:RELATED_LIMIT]),
            "held_total": held.count(),
            "related_limit": RELATED_LIMIT,
            "show_customers": show_customers,
            "can_switch": request.membership.can_write and not account.is_disconnected,
            "can_manage": request.membership.can_manage_account,
        }
        return render(request, "dashboard/connect/detail.html", context)


class ConnectionChangeView(PlatformMixin, View):
    """GET: what the change does, with real counts; POST: do it through the service. Owners."""

    permission = "can_manage_account"
    template_name = "dashboard/connect/confirm.html"

    def get(self, request, pk):
        account = self.get_connected_or_404(pk)
        if self.already_done(account):
            messages.info(request, self.already_text(account))
            return redirect("dashboard:connected_account_detail", account.pk)
        context = {
            "account": account,
            "detail_url": reverse("dashboard:connected_account_detail", args=[account.pk]),
            **self.confirmation(account),
        }
        return render(request, self.template_name, context)

    def post(self, request, pk):
        account = self.get_connected_or_404(pk)
        if self.already_done(account):
            messages.info(request, self.already_text(account))
        else:
            try:
                text = self.perform(account)
            except ValidationError as error:
                for line in error_messages(error):
                    messages.error(request, line)
            else:
                messages.success(request, text)
        return redirect("dashboard:connected_account_detail", account.pk)


class DisconnectView(ConnectionChangeView):
    """Disconnect a connected account from the platform (SPEC R-CON-7): nothing is canceled."""

    def already_done(self, account):
        return account.is_disconnected

    def already_text(self, account):
        return f"{account.display_name} is already disconnected."

    def confirmation(self, account):
        counts = disconnect_consequences(account)
        platform = account.platform.display_name
        return {
            "question": f"Disconnect {account.display_name} from {platform}?",
            "confirm": "Disconnect account",
            "danger": True,
            "summary": (
                f"{account.display_name} leaves your platform. Nothing is canceled: its "
                "customers, subscriptions and invoices stay as they are. Your team can no longer "
                "work inside its dashboard, and it cannot be named as a new transfer destination "
                "or on_behalf_of account until it reconnects."
            ),
            "consequences": [
                {
                    "key": "direct",
                    "title": "Direct subscriptions continue",
                    "text": (
                        f"{count_text(counts['direct'], 'subscription')} on the account keep "
                        "renewing and charging its customers. Platform fees keep being collected "
                        f"on {count_text(counts['direct_fee'], 'subscription')} with an "
                        "application fee percent, unless the fee is removed."
                    ),
                },
                {
                    "key": "destination",
                    "title": "Destination subscriptions keep invoicing, but no funds transfer",
                    "text": (
                        f"{count_text(counts['destination'], 'subscription')} of your platform "
                        "transfer to this account. Their invoices are still created and "
                        "collected, but nothing is transferred to it while it is disconnected: "
                        "the whole payment stays in your balance."
                    ),
                },
                {
                    "key": "held",
                    "title": "Renewals on behalf of it are held as drafts",
                    "text": (
                        f"{count_text(counts['held'], 'subscription')} of your platform on behalf "
                        "of this account charge automatically. Their renewal invoices are still "
                        "created, but stay drafts and are not charged until the account "
                        "reconnects."
                    ),
                },
            ],
        }

    def perform(self, account):
        connect_services.disconnect_account(account)
        return f"{account.display_name} is disconnected from your platform. Nothing was canceled."


class ReconnectView(ConnectionChangeView):
    """Reconnect a disconnected account: held renewal drafts go back to automatic collection."""

    def already_done(self, account):
        return not account.is_disconnected

    def already_text(self, account):
        return f"{account.display_name} is connected."

    def confirmation(self, account):
        held = _mode_counts(held_invoices(account))
        platform = account.platform.display_name
        return {
            "question": f"Reconnect {account.display_name} to {platform}?",
            "confirm": "Reconnect account",
            "danger": False,
            "summary": (
                f"{account.display_name} authorizes your platform again: your team can work "
                "inside its dashboard again, and new payments of destination subscriptions "
                "transfer to it again. Payments collected while it was disconnected are not "
                "transferred afterwards."
            ),
            "consequences": [
                {
                    "key": "held",
                    "title": "Held invoices are finalized and collected",
                    "text": (
                        f"{count_text(held, 'draft invoice')} held while it was disconnected "
                        "will be finalized and charged automatically."
                    ),
                },
            ],
        }

    def perform(self, account):
        held = held_invoices(account).count()
        connect_services.reconnect_account(account)
        text = f"{account.display_name} is connected to your platform again."
        if held:
            text += (
                f" {held} held invoice{'s are' if held != 1 else ' is'} being finalized and "
                "collected."
            )
        return text
