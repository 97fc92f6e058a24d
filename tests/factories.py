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
            "recurring_usage_type": UsageType.LICENSED,
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
