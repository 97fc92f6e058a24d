"""Connect (SPEC R-CON-*): connected accounts, the money a payment moves between accounts, the
platform's fees, and disconnection.

Money: every collected payment writes a `charge` to the merchant's balance. A direct charge
(the payment lives on a connected account) pays the platform its application fee out of it; a
destination charge (on the platform, `transfer_data[destination]`) transfers the amount less
the fee on to the destination. Balances are the sums of those ledger rows.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import batching, events, money, timeline
from billing.choices import (
    AccountType,
    BillingReason,
    CollectionMethod,
    InvoiceStatus,
    LedgerEntryType,
    SubscriptionStatus,
)
from billing.clocks import now_for
from billing.ids import generate
from billing.models import (
    Account,
    ApplicationFee,
    BalanceTransaction,
    Invoice,
    PaymentIntent,
    Subscription,
    Transfer,
)
from billing.serializers import serialize

# The invoices `application_fee_percent` applies to: those of a billing period (SPEC R-CON-4),
# not the immediate prorations of an update.
FEE_BILLING_REASONS = frozenset(
    {BillingReason.SUBSCRIPTION_CREATE, BillingReason.SUBSCRIPTION_CYCLE}
)


def _account(pk: str) -> Account:
    """An account, read once per batch (every payment of a renewal crowd may ask)."""
    return batching.cached(("connect_account", pk), lambda: Account.objects.get(pk=pk))


# --- connected accounts ----------------------------------------------------------------------


def _application_payload(platform: Account) -> dict:
    """Stripe's `application` object: the platform, as the application a connected account
    authorized."""
    return {"id": platform.id, "object": "application", "name": platform.display_name}


def _emit_application_event(event_type: str, account: Account, platform: Account) -> None:
    """`account.application.(de)authorized`, in both modes (the connection holds in both), on the
    connected account so it reaches the platform's Connect endpoints with `account` (R-EVT-4)."""
    for livemode in (False, True):
        events.emit(
            event_type,
            account,
            livemode=livemode,
            payload=_application_payload(platform),
        )


@transaction.atomic
def create_connected_account(platform: Account, **fields) -> Account:
    """A new connected account of `platform` (SPEC R-CON-1), with its own customers, catalog,
    settings and webhooks. `fields` are account settings (name, email, country, currency, time
    zone, branding, metadata). Emits `account.application.authorized`."""
    if platform.type != AccountType.PLATFORM:
        raise ValidationError(
            {"account": "Only a platform can create connected accounts; this is a connected one."}
        )
    from billing.services.accounts import ACCOUNT_SETTINGS_FIELDS, validate_timezone

    unknown = set(fields) - ACCOUNT_SETTINGS_FIELDS - {"country"}
    if unknown:
        raise ValueError(f"not account settings: {', '.join(sorted(unknown))}")
    account = Account(type=AccountType.CONNECTED, platform=platform, **fields)
    if not account.name:
        account.name = account.email or "Connected account"
    if "default_currency" not in fields:
        account.default_currency = platform.default_currency
    if account.timezone:
        try:
            validate_timezone(account.timezone)
        except ValidationError as error:
            raise ValidationError({"timezone": error.messages}) from None
    account.full_clean()
    account.save(force_insert=True)
    _emit_application_event("account.application.authorized", account, platform)
    return account


def _lock_connected(account: Account) -> Account:
    locked = (
        Account.objects.select_for_update(of=("self",))
        .select_related("platform")
        .get(pk=account.pk)
    )
    if locked.type != AccountType.CONNECTED:
        raise ValidationError({"account": "Only a connected account can leave its platform."})
    return locked


@transaction.atomic
def disconnect_account(account: Account) -> Account:
    """The connected account leaves its platform (SPEC R-CON-7): nothing is canceled.

    Direct charges go on, their fees too; destination charges stop transferring; renewal
    invoices of `on_behalf_of` subscriptions that charge automatically stay drafts until the
    account reconnects. The platform can no longer act as the account, and stops receiving its
    events after this `account.application.deauthorized`.
    """
    locked = _lock_connected(account)
    if locked.deauthorized_at is not None:
        return locked
    # Emitted first: the event itself still reaches the platform's Connect endpoints.
    _emit_application_event("account.application.deauthorized", locked, locked.platform)
    locked.deauthorize(timezone.now())
    locked.save(update_fields=["deauthorized_at"])
    account.deauthorized_at = locked.deauthorized_at
    return locked


@transaction.atomic
def reconnect_account(account: Account) -> Account:
    """The account authorizes its platform again: the held `on_behalf_of` drafts go back to
    automatic collection (finalized and charged as soon as the timeline runs them)."""
    locked = _lock_connected(account)
    if locked.deauthorized_at is None:
        return locked
    locked.reauthorize()
    locked.save(update_fields=["deauthorized_at"])
    account.deauthorized_at = None
    _emit_application_event("account.application.authorized", locked, locked.platform)
    from billing.services.invoices import emit_updated

    held = (
        Invoice.objects.select_for_update(of=("self",))
        .filter(on_behalf_of=locked, awaiting_reconnection=True)
        .select_related("subscription")
    )
    for invoice in held:
        before = serialize(invoice)
        invoice.awaiting_reconnection = False
        now = now_for(invoice)
        if not _collects_again(invoice):
            # Its subscription ended or stopped collecting meanwhile: nothing to resume.
            invoice.save(update_fields=["awaiting_reconnection"])
            continue
        if invoice.status == InvoiceStatus.DRAFT:
            invoice.auto_advance = True
            timeline.schedule("finalize_invoice", invoice, at=now)
        else:  # open: its retries were held
            invoice.next_payment_attempt = now
            timeline.schedule("payment_retry", invoice, at=now)
        invoice.save(
            update_fields=["auto_advance", "awaiting_reconnection", "next_payment_attempt"]
        )
        emit_updated("invoice.updated", invoice, before)
    return locked


def _collects_again(invoice: Invoice) -> bool:
    """Whether a held invoice goes back to automatic collection on reconnection: not when its
    subscription was canceled, became unpaid (R-SUB-5) or keeps its invoices as drafts."""
    if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.OPEN):
        return False
    subscription = invoice.subscription
    if subscription is None:
        return True
    if subscription.status in (
        SubscriptionStatus.CANCELED,
        SubscriptionStatus.INCOMPLETE_EXPIRED,
        SubscriptionStatus.UNPAID,
    ):
        return False
    return subscription.pause_collection_behavior != "keep_as_draft"


def check_still_connected(account: Account, param: str) -> None:
    """New Connect arrangements name connected accounts that are still connected."""
    if account.is_disconnected:
        raise ValidationError(
            {param: f"The account {account.id} has disconnected from your platform."}
        )


# --- restrictions (SPEC R-CON-5) -------------------------------------------------------------


def check_platform_may_change(obj, platform: Account | None, *, param: str | None = None) -> None:
    """A platform acting as a connected account may only change the subscriptions (and add fees
    to the invoices) it created itself. `platform` is None when the account acts for itself."""
    if platform is None:
        return
    if getattr(obj, "application_id", None) == platform.pk:
        return
    what = "subscription" if isinstance(obj, Subscription) else "invoice"
    verb = "add an application fee to" if param == "application_fee_amount" else "modify"
    raise ValidationError(
        {
            param or what: f"Your platform cannot {verb} this {what}: it was not created by your "
            "platform."
        }
    )


# --- fees and holds --------------------------------------------------------------------------


def cycle_fee(invoice: Invoice, subscription: Subscription | None) -> int | None:
    """The platform's fee on a subscription's billing-period invoice: `application_fee_percent`
    of what it collects after coupons and the customer's balance (SPEC R-CON-3). None when no
    percentage applies (R-CON-4: immediate prorations and manual invoices)."""
    if subscription is None or subscription.application_fee_percent is None:
        return None
    if invoice.billing_reason not in FEE_BILLING_REASONS or invoice.amount_due <= 0:
        return None
    fee = money.percent_of(invoice.amount_due, subscription.application_fee_percent)
    # What the customer owes from earlier can raise amount_due above the invoice's total; the
    # fee never exceeds the total (R-CON-4).
    return min(fee, invoice.total)


def holds_collection(subscription: Subscription) -> bool:
    """R-CON-7: the renewal invoices of an `on_behalf_of` subscription that charges
    automatically stay drafts while that account is disconnected."""
    return _held(subscription)


def _held(obj) -> bool:
    """Charged automatically on the platform `on_behalf_of` a connected account that has
    disconnected. A connected account's own (direct) arrangements are never held."""
    if obj.on_behalf_of_id is None or obj.on_behalf_of_id == obj.account_id:
        return False
    if obj.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
        return False
    if _account(obj.account_id).platform_id is not None:
        return False
    if not _account(obj.on_behalf_of_id).is_disconnected:
        return False
    # Read again under the account's lock: a reconnection committing meanwhile releases only
    # the holds it can see, so a hold must not be decided on a stale read (reconnect_account
    # takes the same lock, and waits for this transaction).
    return (
        Account.objects.select_for_update()
        .filter(pk=obj.on_behalf_of_id, deauthorized_at__isnull=False)
        .exists()
    )


def holds_invoice(invoice: Invoice) -> bool:
    """R-CON-7: an invoice charged automatically on behalf of a disconnected account is not
    finalized (nor collected) until the account reconnects or `on_behalf_of` is removed."""
    return _held(invoice)


# --- money -----------------------------------------------------------------------------------


def _ledger(account_id, intent, type_, amount, *, source, now, fee=0, description=""):
    row = BalanceTransaction(
        account_id=account_id,
        livemode=intent.livemode,
        type=type_,
        amount=amount,
        fee=fee,
        net=amount - fee,
        currency=intent.currency,
        source=source,
        description=description[:500],
        created=now,
    )
    batching.insert(row)
    return row


def settle_payment(intent: PaymentIntent, invoice: Invoice | None, *, now, request_id=None):
    """Record where a succeeded payment's money goes (SPEC R-CON-2/3/4, R-CON-7).

    - On the merchant's balance (the intent's account): a `charge` of the amount; for a direct
      charge its `fee` is the platform's application fee, which the platform's balance gains.
    - A destination charge transfers the amount less the fee (or `transfer_data.amount_percent`
      of it) to the destination, unless it disconnected: then the platform keeps it all.
    """
    amount = intent.amount_received
    if amount <= 0:
        return
    fee = min(intent.application_fee_amount or 0, amount)
    description = invoice.description or f"Invoice {invoice.number}" if invoice else ""
    destination_id = intent.transfer_data_destination_id
    # A direct charge: the payment lives on a connected account, which pays the platform's fee.
    merchant = _account(intent.account_id) if fee and not destination_id else None
    direct_fee = fee if merchant is not None and merchant.platform_id else 0
    _ledger(
        intent.account_id,
        intent,
        LedgerEntryType.CHARGE,
        amount,
        fee=direct_fee,
        source=intent.id,
        now=now,
        description=description,
    )
    if destination_id:
        _transfer(intent, invoice, fee=fee, now=now, request_id=request_id)
    elif direct_fee:
        _record_fee(
            intent,
            invoice,
            platform_id=merchant.platform_id,
            connected_id=merchant.pk,
            amount=direct_fee,
            moves_balance=True,
            now=now,
            request_id=request_id,
        )


def _record_fee(
    intent, invoice, *, platform_id, connected_id, amount, moves_balance, now, request_id
) -> ApplicationFee:
    """The platform's `application_fee` for one payment; `moves_balance` credits the platform
    (a direct charge's fee), while a destination charge's fee was kept out of its transfer."""
    application_fee = ApplicationFee(
        account_id=platform_id,
        livemode=intent.livemode,
        connected_account_id=connected_id,
        amount=amount,
        currency=intent.currency,
        payment_intent=intent,
        invoice=invoice,
        created=now,
    )
    application_fee.id = generate("fee")
    if moves_balance:
        application_fee.balance_transaction = _ledger(
            platform_id,
            intent,
            LedgerEntryType.APPLICATION_FEE,
            amount,
            source=application_fee.id,
            now=now,
            description=f"Application fee from {connected_id}",
        )
    batching.insert(application_fee)
    events.emit("application_fee.created", application_fee, request_id=request_id)
    return application_fee


def _transfer(intent: PaymentIntent, invoice: Invoice | None, *, fee: int, now, request_id):
    destination = _account(intent.transfer_data_destination_id)
    if destination.is_disconnected:
        # R-CON-7: invoices continue, but no funds move to a disconnected account.
        return
    amount = intent.amount_received
    # A share fixed when the payment was created, else the amount less the platform's fee.
    share = intent.transfer_data_amount
    sent = min(share, amount) if share is not None else amount - fee
    transfer = Transfer(
        account_id=intent.account_id,
        livemode=intent.livemode,
        amount=sent,
        currency=intent.currency,
        destination=destination,
        destination_payment=generate("py"),
        payment_intent=intent,
        invoice=invoice,
        # Stripe groups a destination charge's movements under its PaymentIntent.
        transfer_group=f"group_{intent.id}",
        created=now,
    )
    transfer.id = generate("tr")
    transfer.balance_transaction = _ledger(
        intent.account_id,
        intent,
        LedgerEntryType.TRANSFER,
        -sent,
        source=transfer.id,
        now=now,
        description=f"Transfer to {destination.id}",
    )
    _ledger(
        destination.pk,
        intent,
        LedgerEntryType.PAYMENT,
        sent,
        source=transfer.destination_payment,
        now=now,
        description=f"Payment from {intent.account_id}",
    )
    batching.insert(transfer)
    events.emit("transfer.created", transfer, request_id=request_id)
    if fee and share is None:
        # What the platform kept of the payment, recorded as its fee.
        _record_fee(
            intent,
            invoice,
            platform_id=intent.account_id,
            connected_id=destination.pk,
            amount=fee,
            moves_balance=False,
            now=now,
            request_id=request_id,
        )


# --- balances --------------------------------------------------------------------------------


def balance(account: Account, livemode: bool) -> dict[str, int]:
    """What the account holds per currency in one mode (sum of its ledger's `net`)."""
    rows = (
        BalanceTransaction.objects.filter(account=account, livemode__in=[bool(livemode)])
        .values("currency")
        .annotate(total=Sum("net"))
        .order_by("currency")
    )
    return {row["currency"]: row["total"] for row in rows}
