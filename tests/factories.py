"""Small builders for test data. Each returns a saved object with sensible defaults."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.choices import (
    BillingReason,
    Interval,
    InvoiceStatus,
    PriceType,
    Role,
    SubscriptionStatus,
    UsageType,
)
from billing.models import (
    Account,
    Customer,
    Event,
    Invoice,
    InvoiceLineItem,
    Membership,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)


def make_account(name="Acme", **kwargs) -> Account:
    return Account.objects.create(name=name, **kwargs)


def make_user(email="finance@example.com", password="correct horse battery", **kwargs):
    return get_user_model().objects.create_user(
        username=email, email=email, password=password, **kwargs
    )


def make_member(account: Account, email="finance@example.com", role=Role.OWNER):
    user = make_user(email=email)
    Membership.objects.create(user=user, account=account, role=role)
    return user


def make_customer(account: Account, livemode=False, **kwargs) -> Customer:
    kwargs.setdefault("email", "jenny.rosen@example.com")
    kwargs.setdefault("name", "Jenny Rosen")
    return Customer.objects.create(account=account, livemode=livemode, **kwargs)


def make_card(customer: Customer, **kwargs) -> PaymentMethod:
    kwargs.setdefault("card_last4", "4242")
    kwargs.setdefault("card_exp_month", 12)
    kwargs.setdefault("card_exp_year", timezone.now().year + 2)
    return PaymentMethod.objects.create(
        account=customer.account, livemode=customer.livemode, customer=customer, **kwargs
    )


def make_price(
    account: Account,
    livemode=False,
    unit_amount=2000,
    currency="usd",
    interval=Interval.MONTH,
    product=None,
    **kwargs,
) -> Price:
    product = product or Product.objects.create(
        account=account, livemode=livemode, name=kwargs.pop("product_name", "Pro plan")
    )
    if interval is None:
        recurring = {"type": PriceType.ONE_TIME}
    else:
        recurring = {
            "type": PriceType.RECURRING,
            "recurring_interval": interval,
            "recurring_interval_count": kwargs.pop("interval_count", 1),
            "recurring_usage_type": kwargs.pop("recurring_usage_type", UsageType.LICENSED),
        }
    return Price.objects.create(
        account=account,
        livemode=livemode,
        product=product,
        unit_amount=unit_amount,
        currency=currency,
        **recurring,
        **kwargs,
    )


def make_subscription(
    customer: Customer,
    price: Price | None = None,
    quantity=1,
    status=SubscriptionStatus.ACTIVE,
    **kwargs,
) -> Subscription:
    price = price or make_price(customer.account, livemode=customer.livemode)
    start = kwargs.pop("start", timezone.now())
    kwargs.setdefault("current_period_start", start)
    kwargs.setdefault("current_period_end", start + timedelta(days=30))
    kwargs.setdefault("billing_cycle_anchor", start)
    subscription = Subscription.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        customer=customer,
        status=status,
        currency=price.currency,
        start_date=start,
        **kwargs,
    )
    SubscriptionItem.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        subscription=subscription,
        price=price,
        quantity=quantity,
    )
    return subscription


def make_invoice(
    customer: Customer,
    subscription: Subscription | None = None,
    amount=2000,
    status=InvoiceStatus.OPEN,
    **kwargs,
) -> Invoice:
    start = kwargs.pop("period_start", timezone.now())
    paid = amount if status == InvoiceStatus.PAID else 0
    kwargs.setdefault("currency", "usd")
    invoice = Invoice.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        customer=customer,
        subscription=subscription,
        status=status,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE if subscription else BillingReason.MANUAL,
        subtotal=amount,
        total=amount,
        amount_due=amount,
        amount_paid=paid,
        amount_remaining=amount - paid,
        period_start=start,
        period_end=start,
        **kwargs,
    )
    InvoiceLineItem.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        invoice=invoice,
        subscription=subscription,
        amount=amount,
        currency=invoice.currency,
        description="Pro plan",
        period_start=start,
        period_end=start + timedelta(days=30),
    )
    return invoice


def make_event(account: Account, type="customer.created", livemode=False, obj=None) -> Event:
    object_id = obj.pk if obj is not None else "cus_test"
    return Event.objects.create(
        account=account,
        livemode=livemode,
        type=type,
        object_id=object_id,
        data={"object": {"id": object_id, "object": type.split(".")[0]}},
    )


def make_connected_account(platform: Account, name="Connected shop", **kwargs) -> Account:
    """A connected account belonging to `platform` (SPEC R-CON-1)."""
    from billing.choices import AccountType

    return Account.objects.create(
        name=name, type=AccountType.CONNECTED, platform=platform, **kwargs
    )


def make_test_clock(account: Account, frozen_time=None, **kwargs):
    """A ready test clock, frozen at `frozen_time` (default: now, whole seconds)."""
    from billing.models import TestClock

    frozen_time = frozen_time or timezone.now().replace(microsecond=0)
    return TestClock.objects.create(
        account=account, livemode=False, frozen_time=frozen_time, **kwargs
    )


def make_coupon(account: Account, code="SPRING25", livemode=False, **kwargs):
    """A coupon, 25% off forever unless told otherwise."""
    from decimal import Decimal

    from billing.choices import CouponDuration
    from billing.models import Coupon

    if "amount_off" not in kwargs:
        kwargs.setdefault("percent_off", Decimal("25"))
    kwargs.setdefault("duration", CouponDuration.FOREVER)
    return Coupon.objects.create(account=account, livemode=livemode, code=code, **kwargs)


def make_discount(customer: Customer, coupon=None, subscription=None, **kwargs):
    """A discount applied to `customer` (or one of its subscriptions) since yesterday."""
    from billing.models import Discount

    coupon = coupon or make_coupon(customer.account, livemode=customer.livemode)
    kwargs.setdefault("start", timezone.now() - timedelta(days=1))
    return Discount.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        coupon=coupon,
        customer=customer,
        subscription=subscription,
        **kwargs,
    )


def make_payment_intent(invoice: Invoice, **kwargs):
    """A payment intent collecting `invoice`'s amount due."""
    from billing.models import PaymentIntent

    kwargs.setdefault("amount", invoice.amount_due)
    kwargs.setdefault("currency", invoice.currency)
    return PaymentIntent.objects.create(
        account=invoice.account,
        livemode=invoice.livemode,
        customer=invoice.customer,
        invoice=invoice,
        **kwargs,
    )


def make_balance_transaction(customer: Customer, amount=-500, **kwargs):
    """A balance adjustment of `amount` (negative is a credit) on `customer`."""
    from billing.choices import BalanceTransactionType
    from billing.models import CustomerBalanceTransaction

    kwargs.setdefault("type", BalanceTransactionType.ADJUSTMENT)
    kwargs.setdefault("currency", customer.currency or "usd")
    return CustomerBalanceTransaction.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        customer=customer,
        amount=amount,
        ending_balance=customer.balance + amount,
        **kwargs,
    )


def make_api_key(account: Account, livemode=False, name="Test key", **kwargs):
    """A secret key of `account`; the raw key is on `.raw`, as it is only known when made."""
    from billing.models import ApiKey

    raw = ApiKey.new_raw_key(livemode)
    key = ApiKey(account=account, livemode=livemode, name=name, **kwargs)
    key.set_key(raw)
    key.save()
    key.raw = raw
    return key


def make_exchange_rate(account: Account, currency="eur", rate="1.0850000000"):
    """What one unit of `currency` is worth in the account's default currency."""
    from decimal import Decimal

    from billing.models import ExchangeRate

    return ExchangeRate.objects.create(account=account, currency=currency, rate=Decimal(rate))


def make_dashboard_objects(customer: Customer) -> dict:
    """A subscription, its invoice with a payment, an event, a card and (test mode) a test clock."""
    card = make_card(customer)
    subscription = make_subscription(customer)
    invoice = make_invoice(customer, subscription=subscription)
    make_payment_intent(invoice, payment_method=card)
    event = make_event(customer.account, livemode=customer.livemode, obj=customer)
    objects = {
        "customer": customer,
        "subscription": subscription,
        "invoice": invoice,
        "event": event,
        "card": card,
    }
    if not customer.livemode:
        objects["test_clock"] = make_test_clock(customer.account, name="Renewal rehearsal")
    return objects


def make_invoice_item(
    customer: Customer, amount=1500, subscription=None, invoice=None, price=None, **kwargs
):
    """A one-off charge of `amount` waiting for `customer`'s next invoice (or on `invoice`)."""
    from billing.models import InvoiceItem

    start = kwargs.pop("period_start", timezone.now())
    kwargs.setdefault("currency", price.currency if price else "usd")
    kwargs.setdefault("description", "Setup fee")
    return InvoiceItem.objects.create(
        account=customer.account,
        livemode=customer.livemode,
        customer=customer,
        subscription=subscription,
        invoice=invoice,
        price=price,
        amount=amount,
        period_start=start,
        period_end=kwargs.pop("period_end", start),
        **kwargs,
    )


def make_due_job(obj, kind="renewal", due_at=None, **kwargs):
    """A pending due job of `kind` about `obj` (anything with an account, a mode and an id)."""
    from billing.models import DueJob

    return DueJob.objects.create(
        account_id=obj.account_id,
        livemode=obj.livemode,
        kind=kind,
        target_id=obj.pk,
        due_at=due_at or timezone.now() + timedelta(days=30),
        **kwargs,
    )


def make_recovery_settings(account: Account, livemode=False, **kwargs):
    """`account`'s revenue-recovery settings for one mode (smart retries unless told otherwise)."""
    from billing.models import RecoverySettings

    return RecoverySettings.objects.create(account=account, livemode=livemode, **kwargs)
