"""A believable, deterministic demo account: `python manage.py load_demo`.

"Northwind Software" sells three products with monthly and annual prices in USD and EUR, and
bills about two hundred test-mode customers whose subscriptions sit in every status, with the
invoices, payment intents and events their history implies; a handful of live-mode customers
make the dashboard's live/test switch show a difference.

Every random choice comes from one seeded `random.Random`, so every run builds the same shape
(the same customers, statuses, amounts and timeline). Dates are relative to the day the command
runs, so the data always looks current. Loading works in two phases: first plain-Python *plans*
(all the randomness lives there), then model objects made in `created` order and written with
`bulk_create`, so ids sort the way the objects were (historically) made, as they would in a
real account (SPEC R-CORE-2). Only reserved `.example` domains are used: nothing here can reach
a real inbox.
"""

import calendar
import copy
import random
import secrets
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, prefetch_related_objects

from billing import events
from billing.choices import (
    BillingReason,
    CardBrand,
    CollectionMethod,
    CouponDuration,
    Interval,
    InvoiceStatus,
    MissingPaymentMethodBehavior,
    PaymentIntentStatus,
    PriceType,
    Role,
    SubscriptionStatus,
    TestCardBehavior,
    UsageType,
)
from billing.ids import ALPHABET
from billing.models import (
    Account,
    ApiKey,
    Coupon,
    Customer,
    CustomerBalanceTransaction,
    Discount,
    Event,
    ExchangeRate,
    Invoice,
    InvoiceLineItem,
    Membership,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    TestClock,
)
from billing.money import format_amount

SEED = 20240917
ACCOUNT_NAME = "Northwind Software"
# The marker that tells the demo account from real ones (idempotency and --reset rely on it).
MARKER_KEY, MARKER_VALUE = "demo", "true"
DEFAULT_LOGIN_EMAIL = "demo@relance.local"
LOGIN_FILE_NAME = "demo-login.txt"
INVOICE_PREFIX = "NW"
EUR_TO_USD = Decimal("1.08")

TRIAL_DAYS = 14
# A renewal invoice is a draft for about an hour before it is finalized (SPEC R-INV-2).
FINALIZE_AFTER = timedelta(hours=1)
# Days after finalization of each payment attempt: the first, then three retries (R-INV-9).
ATTEMPT_DAYS = (0, 3, 8, 15)
INCOMPLETE_EXPIRES_AFTER = timedelta(hours=23)

# (key, name, description, unit label, monthly amount per currency). Annual = 10 × monthly.
CATALOG = (
    ("starter", "Starter", "Everything a small team needs to get going.", "", 2900, 2700),
    ("pro", "Pro", "Automations, integrations and priority support, per seat.", "seat", 4900, 4500),
    (
        "enterprise",
        "Enterprise",
        "SSO, audit logs, a dedicated success manager and a 99.9% SLA.",
        "",
        49900,
        45900,
    ),
)
PRODUCT_WEIGHTS = {"starter": 45, "pro": 40, "enterprise": 15}

# How many test-mode customers play each part. The roles spell out the status mix; the
# `lead` customers signed up but never subscribed.
TEST_ROLES = {
    "active": 102,
    "active_expiring_card": 6,
    "active_send_invoice": 8,
    "active_draft": 4,
    "trialing": 14,
    "trialing_no_card": 6,
    "past_due": 11,
    "past_due_3ds": 1,
    "unpaid": 5,
    "canceled": 12,
    "canceled_nonpayment": 6,
    "incomplete": 3,
    "incomplete_3ds": 1,
    "incomplete_expired": 3,
    "paused": 4,
    "lead": 14,
}
LIVE_ROLES = {"active": 4, "trialing": 1}

ROLE_STATUS = {
    "active": SubscriptionStatus.ACTIVE,
    "active_expiring_card": SubscriptionStatus.ACTIVE,
    "active_send_invoice": SubscriptionStatus.ACTIVE,
    "active_draft": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.TRIALING,
    "trialing_no_card": SubscriptionStatus.TRIALING,
    "past_due": SubscriptionStatus.PAST_DUE,
    "past_due_3ds": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.UNPAID,
    "canceled": SubscriptionStatus.CANCELED,
    "canceled_nonpayment": SubscriptionStatus.CANCELED,
    "incomplete": SubscriptionStatus.INCOMPLETE,
    "incomplete_3ds": SubscriptionStatus.INCOMPLETE,
    "incomplete_expired": SubscriptionStatus.INCOMPLETE_EXPIRED,
    "paused": SubscriptionStatus.PAUSED,
}
PAST_DUE = SubscriptionStatus.PAST_DUE
# Roles whose card fails: their last invoice could not be collected.
DECLINING_ROLES = {"past_due", "unpaid", "canceled_nonpayment", "incomplete", "incomplete_expired"}
AUTHENTICATING_ROLES = {"past_due_3ds", "incomplete_3ds"}
NO_CARD_ROLES = {"trialing_no_card", "paused"}

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas",
    "Charlotte", "Mateo", "Ava", "Leo", "Isla", "Hugo", "Chloé", "Jonas", "Zoë", "Rafael",
    "Priya", "Arjun", "Mei", "Kenji", "Amara", "Tunde", "Fatima", "Omar", "Ingrid", "Lars",
    "Léa", "Théo", "Sofía", "Diego", "Giulia", "Marco", "Hannah", "Felix", "Aoife", "Ciarán",
    "Nadia", "Yusuf", "Elena", "Mikhail", "Grace", "Samuel", "Maya", "Daniel", "Clara", "Jakub",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "García", "Müller", "Schmidt", "Dubois", "Martin", "Rossi", "Kowalski",
    "Nguyen", "Kim", "Patel", "O'Brien", "Van der Berg", "Fernández", "Jansen", "Novak", "Silva",
    "Tanaka", "Okafor", "Andersson", "Lefèvre", "Moreau", "Costa", "Ivanova", "Haddad", "Cohen",
    "Walsh", "Murphy", "Bianchi", "Hernández", "Becker", "Laurent", "Sato", "Mensah", "Khan",
    "Fischer", "Rahman", "Lindqvist", "Brennan", "Popescu", "Yilmaz", "Chen", "Wright", "Baker",
)  # fmt: skip
COMPANY_WORDS = (
    "Blue Harbor", "Northstar", "Brightline", "Silverleaf", "Redwood", "Greenfield", "Summit",
    "Pioneer", "Atlas", "Cedar", "Falcon", "Meridian", "Lumen", "Orbital", "Kestrel", "Tidewater",
    "Ironbark", "Juniper", "Copperline", "Halcyon", "Quarry", "Beacon", "Foxglove", "Granite",
)  # fmt: skip
COMPANY_KINDS = (
    "Labs", "Logistics", "Analytics", "Studio", "Health", "Robotics", "Foods", "Energy", "Media",
    "Systems", "Partners", "Works", "Ventures", "Software", "Clinics", "Freight",
)  # fmt: skip
PERSONAL_DOMAINS = ("mail.example", "inbox.example", "post.example", "webmail.example")
# (country, time zone, city, state, postal code, street, locale, weight)
PLACES = (
    ("US", "America/New_York", "New York", "NY", "10013", "Hudson Street", "en-US", 14),
    ("US", "America/Chicago", "Chicago", "IL", "60607", "West Randolph Street", "en-US", 7),
    ("US", "America/Los_Angeles", "San Francisco", "CA", "94107", "Townsend Street", "en-US", 9),
    ("US", "America/Denver", "Denver", "CO", "80202", "Blake Street", "en-US", 4),
    ("US", "America/New_York", "Boston", "MA", "02110", "Atlantic Avenue", "en-US", 4),
    ("CA", "America/Toronto", "Toronto", "ON", "M5V 2T6", "King Street West", "en-CA", 5),
    ("GB", "Europe/London", "London", "", "EC2A 4NE", "Great Eastern Street", "en-GB", 8),
    ("IE", "Europe/Dublin", "Dublin", "", "D02 X285", "Grand Canal Quay", "en-IE", 3),
    ("DE", "Europe/Berlin", "Berlin", "", "10997", "Oranienstraße", "de-DE", 8),
    ("DE", "Europe/Berlin", "München", "", "80331", "Sendlinger Straße", "de-DE", 3),
    ("FR", "Europe/Paris", "Paris", "", "75002", "Rue du Sentier", "fr-FR", 7),
    ("NL", "Europe/Amsterdam", "Amsterdam", "", "1016 DK", "Keizersgracht", "nl-NL", 5),
    ("ES", "Europe/Madrid", "Madrid", "", "28004", "Calle de Fuencarral", "es-ES", 4),
    ("IT", "Europe/Rome", "Milano", "", "20121", "Via Solferino", "it-IT", 3),
    ("AU", "Australia/Sydney", "Sydney", "NSW", "2000", "George Street", "en-AU", 4),
    ("SG", "Asia/Singapore", "Singapore", "", "049712", "Robinson Road", "en-SG", 2),
)
EUR_COUNTRIES = {"IE", "DE", "FR", "NL", "ES", "IT"}
CALLING_CODES = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "DE": "49", "FR": "33", "NL": "31",
    "ES": "34", "IT": "39", "AU": "61", "SG": "65",
}  # fmt: skip
# Stripe's test card numbers (SPEC R-INV-10), by what they do.
TEST_CARD_LAST4 = {
    TestCardBehavior.DECLINE: "0002",
    TestCardBehavior.INSUFFICIENT_FUNDS: "9995",
    TestCardBehavior.AUTHENTICATION_REQUIRED: "3155",
    TestCardBehavior.ATTACH_THEN_FAIL: "0341",
}
SUCCEEDING_CARDS = (
    (CardBrand.VISA, "4242", 6),
    (CardBrand.MASTERCARD, "4444", 3),
    (CardBrand.AMEX, "8431", 1),
    (CardBrand.DISCOVER, "1117", 1),
)
DECLINE_ERRORS = {
    TestCardBehavior.DECLINE: ("generic_decline", "Your card was declined."),
    TestCardBehavior.INSUFFICIENT_FUNDS: (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    TestCardBehavior.ATTACH_THEN_FAIL: ("generic_decline", "Your card was declined."),
}
CANCEL_FEEDBACK = (
    ("too_expensive", "We had to cut tooling costs this quarter."),
    ("switched_service", "Moved everything to an in-house tool."),
    ("unused", None),
    ("missing_features", "We need a native HubSpot integration."),
    ("too_complex", None),
    ("customer_service", None),
    ("other", "Company acquired; consolidating vendors."),
)


# --- dates ------------------------------------------------------------------------------------


def add_months(value: datetime, months: int) -> datetime:
    """`value` moved by whole months, clamped to the month's end (Jan 31 + 1 month → Feb 28)."""
    index = value.year * 12 + value.month - 1 + months
    year, month0 = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month0 + 1)[1])
    return value.replace(year=year, month=month0 + 1, day=day)


def start_of_day(moment: datetime) -> datetime:
    """Midnight UTC of `moment`'s day: the reference every demo date is relative to."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# --- plans: all the randomness ----------------------------------------------------------------


@dataclass
class InvoicePlan:
    """One invoice as it will be written, with its whole timeline."""

    status: str
    reason: str
    created: datetime
    line_start: datetime
    line_end: datetime
    subtotal: int
    discount: int = 0
    trial: bool = False
    finalized_at: datetime | None = None
    paid_at: datetime | None = None
    voided_at: datetime | None = None
    uncollectible_at: datetime | None = None
    due_date: datetime | None = None
    next_payment_attempt: datetime | None = None
    # Times of the payment attempts that failed, in order.
    failed_attempts: list = field(default_factory=list)
    # How the payment intent ended: succeeded, failed, requires_action, canceled (or no PI).
    payment: str | None = None
    number: str | None = None
    obj: Invoice | None = None


@dataclass
class SubscriptionPlan:
    """A subscription: its price, its periods and what happened to it."""

    role: str
    status: str
    product_key: str
    interval: str
    currency: str
    quantity: int
    start: datetime
    period_start: datetime
    period_end: datetime
    anchor: datetime
    collection_method: str = CollectionMethod.CHARGE_AUTOMATICALLY
    days_until_due: int | None = None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    missing_payment_method: str = MissingPaymentMethodBehavior.CREATE_INVOICE
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    cancel_at: datetime | None = None
    cancel_at_period_end: bool = False
    cancellation_details: dict = field(default_factory=dict)
    coupon_code: str | None = None
    invoices: list = field(default_factory=list)
    # (when, new status, old status, also_paused) for the timeline of events.
    transitions: list = field(default_factory=list)
    obj: Subscription | None = None
    item: SubscriptionItem | None = None


@dataclass
class CustomerPlan:
    """A customer, their card and their subscription (if any)."""

    name: str
    email: str
    created: datetime
    metadata: dict
    timezone: str
    address: dict | None
    phone: str
    description: str
    locales: list
    currency: str
    card: dict | None
    subscription: SubscriptionPlan | None
    obj: Customer | None = None
    card_obj: PaymentMethod | None = None


class Planner:
    """Draws customers and their histories from one seeded random generator."""

    def __init__(self, rng: random.Random, base: datetime, livemode: bool):
        self.rng = rng
        self.base = base
        self.livemode = livemode
        self.emails: set[str] = set()

    # Small random helpers; every one of them goes through `self.rng`.
    def ago(self, low_days: float, high_days: float) -> datetime:
        """A moment between `low_days` and `high_days` before the reference day, to the second."""
        seconds = self.rng.randint(int(low_days * 86400), int(high_days * 86400))
        return self.base - timedelta(seconds=seconds)

    def weighted(self, options: dict):
        """One key of `options`, chosen with its value as weight."""
        return self.rng.choices(list(options), weights=list(options.values()))[0]

    def plan_customers(self, roles: dict) -> list[CustomerPlan]:
        """One customer per role slot, in a shuffled but seeded order."""
        slots = [role for role, count in roles.items() for _ in range(count)]
        self.rng.shuffle(slots)
        return [self.plan_customer(role) for role in slots]

    def plan_customer(self, role: str) -> CustomerPlan:
        """A customer who plays `role`: a person, or a company for the bigger plans."""
        rng = self.rng
        place = rng.choices(PLACES, weights=[p[-1] for p in PLACES])[0]
        country, tz, city, state, postal, street, locale, _ = place
        currency = "eur" if country in EUR_COUNTRIES else "usd"
        subscription = None
        if role != "lead":
            subscription = self.plan_subscription(role, currency)
        company = subscription is not None and (
            subscription.product_key == "enterprise"
            or subscription.quantity >= 8
            or role == "active_send_invoice"
        )
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        person = f"{first} {last}"
        if company:
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
            local = rng.choice(("billing", "accounts", "finance", "ap"))
            email = self.unique_email(local, _slug(name, "-") + ".example")
            description = f"Billing contact: {person}"
        else:
            name = person
            email = self.unique_email(f"{_slug(first)}.{_slug(last)}", rng.choice(PERSONAL_DOMAINS))
            description = ""

        metadata = {"segment": "enterprise" if company else "smb"}
        if subscription is not None:
            metadata["plan_tier"] = subscription.product_key
        if rng.random() < 0.15:
            metadata["beta"] = "true"
        if rng.random() < 0.4:
            metadata["crm_id"] = f"HS-{rng.randint(10000, 99999)}"
        if rng.random() < 0.3:
            metadata["signup_source"] = rng.choice(("website", "partner", "sales", "product_hunt"))

        address = None
        if rng.random() < 0.9:
            address = {
                "line1": f"{rng.randint(1, 480)} {street}",
                "line2": rng.choice(("", "", "", f"Suite {rng.randint(100, 950)}")) or None,
                "city": city,
                "state": state or None,
                "postal_code": postal,
                "country": country,
            }
        phone = ""
        if rng.random() < 0.35:
            digits = f"{rng.randint(200, 999)} {rng.randint(100, 999)} {rng.randint(0, 9999):04d}"
            phone = f"+{CALLING_CODES[country]} {digits}"

        if subscription is not None:
            # They signed up a few minutes before subscribing.
            created = subscription.start - timedelta(seconds=rng.randint(120, 3600))
        else:
            created = self.ago(1, 400)
        card = self.plan_card(role, created)
        if card is not None:
            card["billing_details"] = {"name": person, "email": email, "address": address or {}}
        return CustomerPlan(
            name=name,
            email=email,
            created=created,
            metadata=metadata,
            timezone=tz if rng.random() < 0.85 else "",
            address=address,
            phone=phone,
            description=description,
            locales=[locale] if rng.random() < 0.5 else [],
            currency=currency if subscription is not None else "",
            card=card,
            subscription=subscription,
        )

    def unique_email(self, local: str, domain: str) -> str:
        """`local@domain`, with a number added when another demo customer has it already."""
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{self.rng.randint(2, 99)}@{domain}"
        self.emails.add(email)
        return email

    def plan_card(self, role: str, customer_created: datetime) -> dict | None:
        """The card a customer attached (test behaviour by role), or None."""
        rng = self.rng
        if role in NO_CARD_ROLES:
            return None
        if role == "lead" and rng.random() < 0.7:
            return None
        if role == "active_send_invoice" and rng.random() < 0.6:
            return None  # they pay by bank transfer
        if role in AUTHENTICATING_ROLES:
            behavior = TestCardBehavior.AUTHENTICATION_REQUIRED
        elif role in DECLINING_ROLES:
            behavior = rng.choice(
                (
                    TestCardBehavior.DECLINE,
                    TestCardBehavior.INSUFFICIENT_FUNDS,
                    TestCardBehavior.ATTACH_THEN_FAIL,
                )
            )
        else:
            behavior = TestCardBehavior.SUCCEED
        if behavior == TestCardBehavior.SUCCEED:
            brand, last4, _ = rng.choices(
                SUCCEEDING_CARDS, weights=[c[2] for c in SUCCEEDING_CARDS]
            )[0]
        else:
            brand, last4 = CardBrand.VISA, TEST_CARD_LAST4[behavior]
        if self.livemode:
            behavior = TestCardBehavior.SUCCEED
            last4 = f"{rng.randint(0, 9999):04d}"
        if role == "active_expiring_card":
            # Expires at the end of next month: the expiring-card reminder has work to do.
            next_month = add_months(self.base, 1)
            exp_month, exp_year = next_month.month, next_month.year
        else:
            exp_month, exp_year = rng.randint(1, 12), self.base.year + rng.randint(1, 4)
        return {
            "brand": brand,
            "last4": last4,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "behavior": behavior,
            "funding": rng.choice(("credit", "credit", "credit", "debit")),
            "fingerprint": "".join(rng.choice(ALPHABET) for _ in range(16)),
            "created": customer_created + timedelta(seconds=rng.randint(30, 90)),
        }

    def plan_subscription(self, role: str, currency: str) -> SubscriptionPlan:
        """A subscription in the status `role` calls for, with its invoices and transitions."""
        rng = self.rng
        product_key = self.weighted(PRODUCT_WEIGHTS)
        if role == "active_send_invoice":
            product_key = rng.choice(("enterprise", "enterprise", "pro"))
        yearly = rng.random() < 0.25
        if role in {"active_draft", "past_due", "past_due_3ds", "unpaid", "canceled_nonpayment"}:
            yearly = rng.random() < 0.1
        months = 12 if yearly else 1
        quantity = 1
        if product_key == "pro":
            quantity = rng.choice((1, 1, 2, 3, 3, 4, 5, 5, 8, 10, 12, 15))
        plan = SubscriptionPlan(
            role=role,
            status=ROLE_STATUS[role],
            product_key=product_key,
            interval=Interval.YEAR if yearly else Interval.MONTH,
            currency=currency,
            quantity=quantity,
            start=self.base,
            period_start=self.base,
            period_end=self.base,
            anchor=self.base,
        )
        if rng.random() < 0.1 and role in {"active", "canceled", "past_due"}:
            plan.coupon_code = (
                "FRIENDS10" if currency == "usd" and rng.random() < 0.4 else "WELCOME20"
            )

        if role.startswith("trialing") or role == "paused":
            self.plan_trial_only(plan, months)
        elif role.startswith("incomplete"):
            self.plan_incomplete(plan, months)
        else:
            self.plan_billing(plan, months)
        return plan

    def price_amount(self, plan: SubscriptionPlan) -> int:
        """What one period costs before discounts."""
        for key, _, _, _, usd, eur in CATALOG:
            if key == plan.product_key:
                monthly = usd if plan.currency == "usd" else eur
                yearly = plan.interval == Interval.YEAR
                return monthly * (10 if yearly else 1) * plan.quantity
        raise ValueError(f"unknown product {plan.product_key!r}")

    def plan_trial_only(self, plan: SubscriptionPlan, months: int) -> None:
        """A subscription still in (or stopped at the end of) its free trial: one $0 invoice."""
        rng = self.rng
        if plan.role == "paused":
            trial_start = self.ago(TRIAL_DAYS + 1, 75)
        else:
            trial_start = self.ago(0.2, TRIAL_DAYS - 2)
        trial_end = trial_start + timedelta(days=TRIAL_DAYS)
        plan.start = trial_start
        plan.trial_start, plan.trial_end = trial_start, trial_end
        plan.period_start, plan.period_end = trial_start, trial_end
        # Billing starts when the trial ends.
        plan.anchor = trial_end
        if plan.role == "paused":
            plan.missing_payment_method = MissingPaymentMethodBehavior.PAUSE
            plan.transitions.append(
                (trial_end, SubscriptionStatus.PAUSED, SubscriptionStatus.TRIALING, True)
            )
        elif plan.role == "trialing_no_card":
            plan.missing_payment_method = rng.choice(tuple(MissingPaymentMethodBehavior))
        plan.invoices.append(self.trial_invoice(plan))

    def trial_invoice(self, plan: SubscriptionPlan) -> InvoicePlan:
        """Stripe's $0 invoice for the start of a trial."""
        return InvoicePlan(
            status=InvoiceStatus.PAID,
            reason=BillingReason.SUBSCRIPTION_CREATE,
            created=plan.trial_start,
            line_start=plan.trial_start,
            line_end=plan.trial_end,
            subtotal=0,
            trial=True,
            finalized_at=plan.trial_start,
            paid_at=plan.trial_start,
        )

    def plan_incomplete(self, plan: SubscriptionPlan, months: int) -> None:
        """A first payment that failed: still incomplete, or expired after 23 hours."""
        rng = self.rng
        # Incomplete ones started today (they expire after 23 hours); expired ones earlier.
        expiring = plan.role == "incomplete_expired"
        start = self.ago(2, 90) if expiring else self.ago(1 / 24, 8 / 24)
        plan.start = plan.anchor = plan.period_start = start
        plan.period_end = add_months(start, months)
        invoice = InvoicePlan(
            status=InvoiceStatus.OPEN,
            reason=BillingReason.SUBSCRIPTION_CREATE,
            created=start,
            line_start=start,
            line_end=plan.period_end,
            subtotal=self.price_amount(plan),
            finalized_at=start,
        )
        if plan.role == "incomplete_3ds":
            invoice.payment = "requires_action"
        else:
            invoice.payment = "failed"
            invoice.failed_attempts = [start + timedelta(seconds=rng.randint(1, 4))]
        if expiring:
            expired = start + INCOMPLETE_EXPIRES_AFTER
            invoice.status = InvoiceStatus.VOID
            invoice.voided_at = expired
            invoice.payment = "canceled"
            plan.ended_at = expired
            plan.transitions.append(
                (
                    expired,
                    SubscriptionStatus.INCOMPLETE_EXPIRED,
                    SubscriptionStatus.INCOMPLETE,
                    False,
                )
            )
        plan.invoices.append(invoice)

    def plan_billing(self, plan: SubscriptionPlan, months: int) -> None:
        """A subscription that has billed for one or more periods, ending in its status."""
        rng = self.rng
        role = plan.role
        yearly = months == 12
        overdue = False
        if role == "active_send_invoice":
            overdue = rng.random() < 0.5
            # A monthly invoice can only be overdue within its period with 14 days to pay.
            plan.days_until_due = 14 if overdue and not yearly else rng.choice((14, 14, 30))
        # When the current (or, once canceled, the last) period started. Times still to come
        # (retries, due dates, period ends) are at least a day after the reference midnight, so
        # they are still ahead whenever in the day the command runs.
        if role == "active_draft":
            last_start = self.base - timedelta(minutes=rng.randint(5, 50))
        elif role == "past_due":
            # `failed` attempts happened before today; the next one is due after today.
            failed = rng.choice((1, 1, 2, 3))
            low, high = ATTEMPT_DAYS[failed - 1] + 1 / 12, ATTEMPT_DAYS[failed] - 1
            last_start = self.ago(low, high) - FINALIZE_AFTER
        elif role == "past_due_3ds":
            last_start = self.ago(0.2, 10)
        elif role == "unpaid":
            last_start = self.ago(16, 27 if not yearly else 120)
        elif role == "canceled_nonpayment":
            last_start = self.ago(16, 200)
        elif role == "canceled":
            # The last period ended some time ago.
            last_end = self.ago(1, 240)
            last_start = add_months(last_end, -months)
        elif overdue:
            last_start = self.ago(plan.days_until_due + 2, 27 if not yearly else 200)
        elif role == "active_send_invoice":
            last_start = self.ago(0.1, 12)
        else:
            last_start = self.ago(0.1, 27 if not yearly else 360)
        history = rng.randint(0, 1) if yearly else rng.randint(0, 11)
        if role == "active_draft" or role == "canceled" or role == "active_send_invoice":
            history = max(history, 1)
        count = history + 1
        starts = [add_months(last_start, -months * (count - 1 - i)) for i in range(count)]
        ends = starts[1:] + [add_months(last_start, months)]

        had_trial = role in {"active", "active_expiring_card", "canceled"} and rng.random() < 0.3
        plan.start = starts[0]
        plan.anchor = starts[0]
        plan.period_start, plan.period_end = starts[-1], ends[-1]
        if had_trial:
            plan.trial_start = starts[0] - timedelta(days=TRIAL_DAYS)
            plan.trial_end = starts[0]
            plan.start = plan.trial_start
            plan.invoices.append(self.trial_invoice(plan))
            plan.transitions.append(
                (plan.trial_end, SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, False)
            )
        if role == "active_send_invoice":
            plan.collection_method = CollectionMethod.SEND_INVOICE

        amount = self.price_amount(plan)
        for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
            first = index == 0 and not had_trial
            created = start
            invoice = InvoicePlan(
                status=InvoiceStatus.PAID,
                reason=BillingReason.SUBSCRIPTION_CREATE
                if first
                else BillingReason.SUBSCRIPTION_CYCLE,
                created=created,
                line_start=start,
                line_end=end,
                subtotal=amount,
                # The first invoice is paid while subscribing; renewals wait about an hour.
                finalized_at=created if first else created + FINALIZE_AFTER,
            )
            plan.invoices.append(invoice)
            last = index == count - 1
            if last and role == "active_draft":
                invoice.status = InvoiceStatus.DRAFT
                invoice.finalized_at = None
                invoice.next_payment_attempt = created + FINALIZE_AFTER
            elif plan.collection_method == CollectionMethod.SEND_INVOICE:
                invoice.due_date = invoice.finalized_at + timedelta(days=plan.days_until_due)
                if last:
                    invoice.status = InvoiceStatus.OPEN
                else:
                    delay = timedelta(days=rng.randint(2, plan.days_until_due - 1))
                    invoice.paid_at = min(invoice.finalized_at + delay, self.base)
            elif last and role in {"past_due", "past_due_3ds", "unpaid", "canceled_nonpayment"}:
                self.plan_failed_renewal(plan, invoice)
            else:
                invoice.payment = "succeeded"
                invoice.paid_at = invoice.finalized_at + timedelta(seconds=rng.randint(1, 6))
                if not first and role != "canceled" and rng.random() < 0.05:
                    # The first attempt failed and the second, three days later, worked.
                    retry = invoice.finalized_at + timedelta(days=ATTEMPT_DAYS[1])
                    if retry < min(end, self.base):
                        invoice.failed_attempts = [invoice.finalized_at]
                        invoice.paid_at = retry + timedelta(seconds=rng.randint(1, 6))
                        plan.transitions.append(
                            (invoice.finalized_at, PAST_DUE, SubscriptionStatus.ACTIVE, False)
                        )
                        plan.transitions.append(
                            (invoice.paid_at, SubscriptionStatus.ACTIVE, PAST_DUE, False)
                        )

        if role == "canceled":
            self.plan_cancellation(plan)
        elif role == "active" and rng.random() < 0.06:
            self.plan_scheduled_cancellation(plan)

    def plan_failed_renewal(self, plan: SubscriptionPlan, invoice: InvoicePlan) -> None:
        """The renewal that could not be collected: retried, then left open or written off."""
        rng = self.rng
        invoice.status = InvoiceStatus.OPEN
        finalized = invoice.finalized_at
        if plan.role == "past_due_3ds":
            invoice.payment = "requires_action"
            plan.transitions.append((finalized, PAST_DUE, SubscriptionStatus.ACTIVE, False))
            return
        invoice.payment = "failed"
        for days in ATTEMPT_DAYS:
            attempt = finalized + timedelta(days=days, seconds=rng.randint(0, 3600) if days else 2)
            if attempt > self.base:
                invoice.next_payment_attempt = attempt
                break
            invoice.failed_attempts.append(attempt)
        plan.transitions.append(
            (invoice.failed_attempts[0], PAST_DUE, SubscriptionStatus.ACTIVE, False)
        )
        final = invoice.failed_attempts[-1]
        if plan.role == "unpaid":
            plan.transitions.append((final, SubscriptionStatus.UNPAID, PAST_DUE, False))
        elif plan.role == "canceled_nonpayment":
            invoice.status = InvoiceStatus.UNCOLLECTIBLE
            invoice.uncollectible_at = final
            plan.canceled_at = plan.ended_at = final
            plan.cancellation_details = {"reason": "payment_failed"}

    def cancellation_request(self) -> dict:
        """Stripe's cancellation_details of a customer who asked to cancel, with their feedback."""
        feedback, comment = self.rng.choice(CANCEL_FEEDBACK)
        details = {"reason": "cancellation_requested", "feedback": feedback}
        if comment:
            details["comment"] = comment
        return details

    def plan_scheduled_cancellation(self, plan: SubscriptionPlan) -> None:
        """An active subscription whose customer asked to cancel when the period ends."""
        plan.cancellation_details = self.cancellation_request()
        days_in = (self.base - plan.period_start).total_seconds() / 86400
        plan.canceled_at = self.ago(0.01, max(days_in - 0.05, 0.02))
        plan.cancel_at_period_end = True
        plan.cancel_at = plan.period_end

    def plan_cancellation(self, plan: SubscriptionPlan) -> None:
        """A customer who asked to cancel: at the period's end (mostly), or at once."""
        rng = self.rng
        plan.cancellation_details = self.cancellation_request()
        span = (plan.period_end - plan.period_start).total_seconds()
        asked = plan.period_start + timedelta(seconds=rng.randint(3600, int(span * 0.9)))
        if rng.random() < 0.7:
            plan.cancel_at_period_end = True
            plan.canceled_at = asked
            plan.ended_at = plan.cancel_at = plan.period_end
        else:
            plan.canceled_at = plan.ended_at = asked


def _slug(text: str, joiner: str = "") -> str:
    """ASCII letters and digits of `text`, lowercased: "Van der Berg" → "vanderberg"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = ["".join(ch for ch in word if ch.isalnum()) for word in ascii_text.lower().split()]
    return joiner.join(word for word in words if word)


# --- building the objects ---------------------------------------------------------------------


@dataclass
class PendingEvent:
    """An event to emit once everything is written: `obj` as it was at `created`."""

    created: datetime
    type: str
    obj: object
    state: dict = field(default_factory=dict)
    previous_attributes: dict | None = None


class Builder:
    """Turns one mode's plans into model objects, in creation order, and writes them in bulk."""

    def __init__(self, account: Account, livemode: bool, base: datetime):
        self.account = account
        self.livemode = livemode
        self.base = base
        self.rows: dict[type, list] = {}
        self.events: list[PendingEvent] = []
        self.prices: dict[tuple[str, str, str], Price] = {}
        self.products: dict[str, Product] = {}
        self.coupons: dict[str, Coupon] = {}

    def add(self, model, **fields):
        """A new, unsaved `model` object of this account and mode, queued for bulk_create."""
        obj = model(account=self.account, livemode=self.livemode, **fields)
        self.rows.setdefault(model, []).append(obj)
        return obj

    def event(self, created, type_, obj, previous_attributes=None, **state):
        """Queue an event; `state` overrides fields so `data.object` shows the object back then."""
        self.events.append(PendingEvent(created, type_, obj, state, previous_attributes))

    def build_catalog(self, created: datetime) -> None:
        """Three products, each priced monthly and yearly in USD and EUR, and two coupons."""
        for key, name, description, unit_label, usd, eur in CATALOG:
            product = self.add(
                Product,
                name=name,
                description=description,
                unit_label=unit_label,
                metadata={"tier": key},
                created=created,
            )
            self.products[key] = product
            self.event(created, "product.created", product)
            for interval, factor in ((Interval.MONTH, 1), (Interval.YEAR, 10)):
                for currency, monthly in (("usd", usd), ("eur", eur)):
                    created += timedelta(seconds=7)
                    adjective = "Monthly" if interval == Interval.MONTH else "Yearly"
                    price = self.add(
                        Price,
                        product=product,
                        currency=currency,
                        unit_amount=monthly * factor,
                        type=PriceType.RECURRING,
                        recurring_interval=interval,
                        recurring_interval_count=1,
                        recurring_usage_type=UsageType.LICENSED,
                        nickname=f"{name} {adjective.lower()} ({currency.upper()})",
                        lookup_key=f"{key}_{adjective.lower()}_{currency}",
                        created=created,
                    )
                    self.prices[key, interval, currency] = price
                    if interval == Interval.MONTH and currency == "usd":
                        product.default_price = price
                    self.event(created, "price.created", price)
            created += timedelta(minutes=3)
        self.coupons["WELCOME20"] = self.add(
            Coupon,
            code="WELCOME20",
            name="Welcome: 20% off 3 months",
            percent_off=Decimal("20"),
            duration=CouponDuration.REPEATING,
            duration_in_months=3,
            created=created + timedelta(days=20),
        )
        self.coupons["FRIENDS10"] = self.add(
            Coupon,
            code="FRIENDS10",
            name="Friends of Northwind: $10 off",
            amount_off=1000,
            currency="usd",
            duration=CouponDuration.FOREVER,
            created=created + timedelta(days=41),
        )

    def build(self, plans: list[CustomerPlan]) -> None:
        """Every object the plans describe, model by model, each in `created` order."""
        for plan in sorted(plans, key=lambda p: p.created):
            self.build_customer(plan)
        with_cards = [p for p in plans if p.card is not None]
        for plan in sorted(with_cards, key=lambda p: p.card["created"]):
            self.build_card(plan)
        subscribed = [p for p in plans if p.subscription is not None]
        for plan in sorted(subscribed, key=lambda p: p.subscription.start):
            self.build_subscription(plan, plan.subscription)
        invoices = [(inv, p) for p in subscribed for inv in p.subscription.invoices]
        invoices.sort(key=lambda pair: pair[0].created)
        self.number_invoices([inv for inv, _ in invoices])
        for invoice_plan, plan in invoices:
            self.build_invoice(plan, invoice_plan)
        for plan in subscribed:
            plan.subscription.obj.latest_invoice = plan.subscription.invoices[-1].obj
        payments = [pair for pair in invoices if pair[0].payment]
        payments.sort(key=lambda pair: pair[0].finalized_at)
        for invoice_plan, plan in payments:
            self.build_payment_intent(plan, invoice_plan)

    def build_customer(self, plan: CustomerPlan) -> None:
        """The customer, and its customer.created event."""
        customer = self.add(
            Customer,
            email=plan.email,
            name=plan.name,
            phone=plan.phone,
            description=plan.description,
            address=plan.address,
            preferred_locales=plan.locales,
            timezone=plan.timezone,
            currency=plan.currency,
            metadata=plan.metadata,
            created=plan.created,
        )
        plan.obj = customer
        self.event(
            plan.created,
            "customer.created",
            customer,
            invoice_settings_default_payment_method_id=None,
            currency="",
        )

    def build_card(self, plan: CustomerPlan) -> None:
        """The customer's card, attached and made the default for invoices."""
        card = plan.card
        pm = self.add(
            PaymentMethod,
            customer=plan.obj,
            card_brand=card["brand"],
            card_last4=card["last4"],
            card_exp_month=card["exp_month"],
            card_exp_year=card["exp_year"],
            card_fingerprint=card["fingerprint"],
            card_funding=card["funding"],
            card_country=(plan.address or {}).get("country") or "US",
            test_behavior=card["behavior"],
            billing_details=card["billing_details"],
            created=card["created"],
        )
        plan.card_obj = pm
        plan.obj.invoice_settings_default_payment_method = pm
        self.event(card["created"], "payment_method.attached", pm)
        self.event(
            card["created"],
            "customer.updated",
            plan.obj,
            previous_attributes={"invoice_settings": {"default_payment_method": None}},
            currency="",
        )

    def build_subscription(self, plan: CustomerPlan, sp: SubscriptionPlan) -> None:
        """The subscription, its item, its discount and the events of its status changes."""
        price = self.prices[sp.product_key, sp.interval, sp.currency]
        sub = self.add(
            Subscription,
            customer=plan.obj,
            status=sp.status,
            currency=sp.currency,
            start_date=sp.start,
            current_period_start=sp.period_start,
            current_period_end=sp.period_end,
            billing_cycle_anchor=sp.anchor,
            trial_start=sp.trial_start,
            trial_end=sp.trial_end,
            trial_settings_missing_payment_method=sp.missing_payment_method,
            cancel_at_period_end=sp.cancel_at_period_end,
            cancel_at=sp.cancel_at,
            canceled_at=sp.canceled_at,
            ended_at=sp.ended_at,
            cancellation_details=sp.cancellation_details,
            collection_method=sp.collection_method,
            days_until_due=sp.days_until_due,
            metadata={"plan_tier": sp.product_key},
            created=sp.start,
        )
        sp.obj = sub
        sp.item = self.add(
            SubscriptionItem, subscription=sub, price=price, quantity=sp.quantity, created=sp.start
        )
        if sp.coupon_code:
            coupon = self.coupons[sp.coupon_code]
            end = None
            if coupon.duration == CouponDuration.REPEATING:
                end = add_months(sp.start, coupon.duration_in_months)
            discount = self.add(
                Discount,
                coupon=coupon,
                customer=plan.obj,
                subscription=sub,
                start=sp.start,
                end=end,
                created=sp.start,
            )
            coupon.times_redeemed += 1
            self.event(sp.start, "customer.discount.created", discount)
            for invoice in sp.invoices:
                if not invoice.trial and (end is None or invoice.created < end):
                    invoice.discount = _discount_amount(coupon, invoice.subtotal)

        first = sp.invoices[0]
        trialing = sp.trial_start is not None
        initial = SubscriptionStatus.TRIALING if trialing else SubscriptionStatus.ACTIVE
        if sp.role.startswith("incomplete"):
            initial = SubscriptionStatus.INCOMPLETE
        first_end = sp.trial_end if trialing else first.line_end
        at_start = {
            "status": initial,
            "current_period_start": sp.start,
            "current_period_end": first_end,
            "cancel_at_period_end": False,
            "cancel_at": None,
            "canceled_at": None,
            "ended_at": None,
            "cancellation_details": {},
            # Invoices are made after subscriptions: their ids are looked up when emitting.
            "latest_invoice_id": lambda: first.obj.id,
        }
        self.event(sp.start, "customer.subscription.created", sub, **at_start)
        if trialing and sp.trial_end - timedelta(days=3) <= self.base:
            self.event(
                sp.trial_end - timedelta(days=3),
                "customer.subscription.trial_will_end",
                sub,
                **at_start,
            )
        for when, new, old, also_paused in sp.transitions:
            period = _period_at(sp, when)
            state = {**at_start, "status": new, **period}
            self.event(
                when,
                "customer.subscription.updated",
                sub,
                previous_attributes={"status": old},
                **state,
            )
            if also_paused:
                self.event(when, "customer.subscription.paused", sub, **state)
        if sp.cancel_at_period_end:
            self.event(
                sp.canceled_at,
                "customer.subscription.updated",
                sub,
                previous_attributes={
                    "cancel_at_period_end": False,
                    "cancel_at": None,
                    "canceled_at": None,
                    "cancellation_details": {"reason": None, "feedback": None},
                },
                status=SubscriptionStatus.ACTIVE,
                ended_at=None,
            )
        if sp.status == SubscriptionStatus.CANCELED:
            self.event(sp.ended_at, "customer.subscription.deleted", sub)

    def number_invoices(self, invoices: list[InvoicePlan]) -> None:
        """Give finalized invoices their numbers, NW-0001 on, in the order they were finalized."""
        finalized = [inv for inv in invoices if inv.finalized_at is not None]
        finalized.sort(key=lambda inv: inv.finalized_at)
        for position, invoice in enumerate(finalized, start=1):
            invoice.number = f"{INVOICE_PREFIX}-{position:04d}"

    def build_invoice(self, plan: CustomerPlan, ip: InvoicePlan) -> None:
        """An invoice with its line, amounts that add up, and the events of its life."""
        sp = plan.subscription
        price = self.prices[sp.product_key, sp.interval, sp.currency]
        product = self.products[sp.product_key]
        total = ip.subtotal - ip.discount
        paid = total if ip.status == InvoiceStatus.PAID else 0
        previous = _previous_line_start(sp, ip)
        auto = sp.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
        attempts = len(ip.failed_attempts) + (1 if ip.payment == "succeeded" else 0)
        if ip.payment == "requires_action":
            attempts = 1
        invoice = self.add(
            Invoice,
            customer=plan.obj,
            subscription=sp.obj,
            status=ip.status,
            billing_reason=ip.reason,
            collection_method=sp.collection_method,
            currency=sp.currency,
            number=ip.number,
            due_date=ip.due_date,
            auto_advance=ip.status not in {InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE},
            attempt_count=attempts,
            attempted=attempts > 0 or (ip.trial and auto),
            next_payment_attempt=ip.next_payment_attempt,
            subtotal=ip.subtotal,
            total_discount_amount=ip.discount,
            total=total,
            ending_balance=0 if ip.finalized_at else None,
            amount_due=total,
            amount_paid=paid,
            amount_remaining=total - paid,
            # Stripe's invoice period is the one before the billed one (empty for the first).
            period_start=previous or ip.created,
            period_end=ip.created,
            finalized_at=ip.finalized_at,
            paid_at=ip.paid_at,
            voided_at=ip.voided_at,
            marked_uncollectible_at=ip.uncollectible_at,
            created=ip.created,
        )
        ip.obj = invoice
        interval = "month" if sp.interval == Interval.MONTH else "year"
        if ip.trial:
            description = f"Trial period for {product.name}"
        else:
            unit = format_amount(price.unit_amount, price.currency)
            description = f"{sp.quantity} × {product.name} (at {unit} / {interval})"
        self.add(
            InvoiceLineItem,
            invoice=invoice,
            subscription=sp.obj,
            subscription_item=sp.item,
            price=price,
            description=description,
            amount=0 if ip.trial else ip.subtotal,
            currency=sp.currency,
            quantity=sp.quantity,
            period_start=ip.line_start,
            period_end=ip.line_end,
            created=ip.created,
        )
        self.invoice_events(ip, invoice)

    def invoice_events(self, ip: InvoicePlan, invoice: Invoice) -> None:
        """created → finalized → payment failures → paid / voided / written off / overdue."""
        unpaid = {
            "amount_paid": 0,
            "amount_remaining": invoice.amount_due,
            "paid_at": None,
            "voided_at": None,
            "marked_uncollectible_at": None,
        }
        draft = {
            **unpaid,
            "status": InvoiceStatus.DRAFT,
            "number": None,
            "finalized_at": None,
            "due_date": None,
            "attempt_count": 0,
            "attempted": False,
            "ending_balance": None,
            "payment_intent_id": None,
        }
        if ip.finalized_at is not None and not ip.trial:
            draft["next_payment_attempt"] = ip.finalized_at
        self.event(ip.created, "invoice.created", invoice, **draft)
        if ip.finalized_at is None:
            return
        opened = {
            **unpaid,
            "status": InvoiceStatus.OPEN,
            "attempt_count": 0,
            "attempted": False,
            "next_payment_attempt": ip.finalized_at if ip.payment else None,
        }
        self.event(ip.finalized_at, "invoice.finalized", invoice, **opened)
        for number, attempt in enumerate(ip.failed_attempts, start=1):
            # The next try: another failure, the retry that worked, the scheduled one, or none.
            following = ip.failed_attempts[number:] or [ip.paid_at or ip.next_payment_attempt]
            retry = following[0]
            self.event(
                attempt,
                "invoice.payment_failed",
                invoice,
                **{
                    **unpaid,
                    "status": InvoiceStatus.OPEN,
                    "attempt_count": number,
                    "attempted": True,
                    "next_payment_attempt": retry,
                },
            )
        if ip.payment == "requires_action":
            self.event(ip.finalized_at, "invoice.payment_action_required", invoice)
        if ip.status == InvoiceStatus.PAID:
            self.event(ip.paid_at, "invoice.paid", invoice)
        elif ip.status == InvoiceStatus.VOID:
            self.event(ip.voided_at, "invoice.voided", invoice)
        elif ip.status == InvoiceStatus.UNCOLLECTIBLE:
            self.event(ip.uncollectible_at, "invoice.marked_uncollectible", invoice)
        elif ip.due_date is not None and ip.due_date <= self.base:
            self.event(ip.due_date, "invoice.overdue", invoice)

    def build_payment_intent(self, plan: CustomerPlan, ip: InvoicePlan) -> None:
        """The payment intent that collected (or tried to collect) a charged invoice."""
        invoice = ip.obj
        card = plan.card_obj
        fields = {
            "status": PaymentIntentStatus.SUCCEEDED,
            "payment_method": card,
            "amount_received": 0,
        }
        error = None
        if plan.card is not None and ip.failed_attempts:
            code, message = DECLINE_ERRORS.get(
                plan.card["behavior"], ("insufficient_funds", "Your card has insufficient funds.")
            )
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": code,
                "message": message,
                "payment_method": {"id": card.id, "object": "payment_method"},
            }
        if ip.payment == "succeeded":
            fields["amount_received"] = invoice.amount_due
        elif ip.payment == "failed":
            fields.update(status=PaymentIntentStatus.REQUIRES_PAYMENT_METHOD, payment_method=None)
            fields["last_payment_error"] = error
        elif ip.payment == "requires_action":
            fields.update(
                status=PaymentIntentStatus.REQUIRES_ACTION,
                next_action={"type": "use_stripe_sdk"},
            )
        elif ip.payment == "canceled":
            fields.update(
                status=PaymentIntentStatus.CANCELED,
                payment_method=None,
                last_payment_error=error,
                canceled_at=ip.voided_at,
                cancellation_reason="void_invoice",
            )
        pi = self.add(
            PaymentIntent,
            customer=plan.obj,
            invoice=invoice,
            amount=invoice.amount_due,
            currency=invoice.currency,
            description=f"Payment for Invoice {invoice.number}",
            created=ip.finalized_at,
            **fields,
        )
        # bulk_create skips save(), which is where the client secret is made.
        pi.client_secret = f"{pi.id}_secret_{secrets.token_urlsafe(18)}"
        invoice.payment_intent = pi
        if ip.payment == "succeeded":
            self.event(ip.paid_at, "payment_intent.succeeded", pi)
        elif ip.payment == "failed":
            self.event(ip.failed_attempts[-1], "payment_intent.payment_failed", pi)
        elif ip.payment == "requires_action":
            self.event(ip.finalized_at, "payment_intent.requires_action", pi)
        else:
            self.event(ip.voided_at, "payment_intent.canceled", pi)

    def write(self) -> None:
        """bulk_create everything. Foreign keys are checked at commit, so the order is free."""
        for model in (
            Product,
            Price,
            Coupon,
            Customer,
            PaymentMethod,
            Subscription,
            SubscriptionItem,
            Discount,
            Invoice,
            InvoiceLineItem,
            PaymentIntent,
        ):
            model.objects.bulk_create(self.rows.get(model, []), batch_size=500)


def _discount_amount(coupon: Coupon, subtotal: int) -> int:
    """What `coupon` takes off `subtotal`, rounded half to even, never more than the subtotal."""
    if coupon.percent_off is not None:
        off = (Decimal(subtotal) * coupon.percent_off / 100).quantize(Decimal(1), ROUND_HALF_EVEN)
        return int(off)
    return min(coupon.amount_off, subtotal)


def _period_at(sp: SubscriptionPlan, when: datetime) -> dict:
    """The subscription's period and latest invoice at `when` (ids resolved when emitting)."""
    current = sp.invoices[0]
    for invoice in sp.invoices:
        if invoice.created <= when:
            current = invoice
    return {
        "current_period_start": current.line_start,
        "current_period_end": current.line_end,
        "latest_invoice_id": lambda: current.obj.id,
    }


def _previous_line_start(sp: SubscriptionPlan, ip: InvoicePlan) -> datetime | None:
    """Where the period before `ip`'s began, for a renewal's invoice period; None for the first."""
    position = sp.invoices.index(ip)
    if ip.reason == BillingReason.SUBSCRIPTION_CREATE or position == 0:
        return None
    return sp.invoices[position - 1].line_start


# --- events -----------------------------------------------------------------------------------


def record_events(pending: list[PendingEvent]) -> int:
    """Write every queued event, oldest first, as history (`events.record_history`: no emails,
    webhooks or automation runs for things that "happened" months ago).

    `data.object` shows each object as it was back then: a copy with that moment's fields.
    """
    pending.sort(key=lambda event: (event.created, _same_second_rank(event.type)))
    rows = []
    for item in pending:
        obj = item.obj
        if item.state:
            obj = copy.copy(obj)
            for name, value in item.state.items():
                setattr(obj, name, value() if callable(value) else value)
        # Built in `created` order, so event ids sort the way the events happened.
        rows.append(
            events.build(
                item.type, obj, previous_attributes=item.previous_attributes, created=item.created
            )
        )
    return events.record_history(rows)


def _same_second_rank(event_type: str) -> int:
    """Stripe's order for events of one moment: the payment, then the invoice, then the
    subscription's status change it caused."""
    if event_type.startswith("payment_intent."):
        return 0
    if event_type.startswith("invoice."):
        return 1
    if event_type in {
        "customer.subscription.updated",
        "customer.subscription.paused",
        "customer.subscription.deleted",
    }:
        return 2
    return 0


def _prefetch_for_serializers(builder: Builder) -> None:
    """Load the relations the serializers follow, once, so emitting costs no query per event."""
    rows = builder.rows
    prefetch_related_objects(rows.get(Customer, []), "discounts")
    prefetch_related_objects(rows.get(Subscription, []), "items__price", "discounts__coupon")
    prefetch_related_objects(rows.get(Invoice, []), "lines__price")


# --- loading, resetting, logging in -----------------------------------------------------------


@dataclass
class LoadResult:
    """What `load_demo` did."""

    account: Account
    loaded: bool
    deleted: bool = False
    events: int = 0
    seconds: float = 0.0


def find_demo_account() -> Account | None:
    """The demo account, recognised by its metadata marker."""
    return (
        Account.objects.filter(**{f"metadata__{MARKER_KEY}": MARKER_VALUE})
        .order_by("created")
        .first()
    )


def delete_demo_account(account: Account) -> None:
    """Delete the demo account and all its data: dependents first, past PROTECT foreign keys."""
    for model in (
        Event,
        PaymentIntent,
        InvoiceLineItem,
        Invoice,
        Discount,
        SubscriptionItem,
        Subscription,
        CustomerBalanceTransaction,
        PaymentMethod,
        Customer,
        Coupon,
        Price,
        Product,
        TestClock,
        ExchangeRate,
        ApiKey,
    ):
        model.objects.filter(account=account).delete()
    account.delete()


def plan_mode(*, livemode: bool, base: datetime, seed: int) -> list[CustomerPlan]:
    """One mode's customers and their histories; each mode has its own random stream."""
    rng = random.Random(f"{seed}-{'live' if livemode else 'test'}")
    return Planner(rng, base, livemode).plan_customers(LIVE_ROLES if livemode else TEST_ROLES)


def build_mode(account: Account, plans: list[CustomerPlan], *, livemode: bool, base) -> Builder:
    """Write one mode's catalog and the planned customers; their events stay queued."""
    builder = Builder(account, livemode, base)
    builder.build_catalog(account.created + timedelta(days=2))
    builder.build(plans)
    builder.write()
    return builder


@transaction.atomic
def load_demo(*, now: datetime, seed: int = SEED, reset: bool = False) -> LoadResult:
    """Load the demo account unless it is there already; with `reset`, delete it and reload."""
    started = time.perf_counter()
    existing = find_demo_account()
    deleted = False
    if existing is not None:
        if not reset:
            return LoadResult(account=existing, loaded=False)
        delete_demo_account(existing)
        deleted = True

    base = start_of_day(now)
    plans = {mode: plan_mode(livemode=mode, base=base, seed=seed) for mode in (False, True)}
    earliest = min(
        min(p.created, p.subscription.start if p.subscription else p.created)
        for mode_plans in plans.values()
        for p in mode_plans
    )
    account = Account.objects.create(
        name=ACCOUNT_NAME,
        email="billing@northwind.example",
        country="US",
        default_currency="usd",
        timezone="America/New_York",
        branding_display_name="Northwind",
        branding_primary_color="#0E7490",
        metadata={MARKER_KEY: MARKER_VALUE},
        # Set up a couple of months before its first customer came.
        created=start_of_day(earliest) - timedelta(days=60),
    )
    ExchangeRate.objects.create(account=account, currency="eur", rate=EUR_TO_USD)
    pending = []
    for livemode, mode_plans in plans.items():
        builder = build_mode(account, mode_plans, livemode=livemode, base=base)
        _prefetch_for_serializers(builder)
        pending.extend(builder.events)
    count = record_events(pending)
    return LoadResult(
        account=account,
        loaded=True,
        deleted=deleted,
        events=count,
        seconds=time.perf_counter() - started,
    )


@dataclass
class DemoLogin:
    """The dashboard login of the demo account, and whether its password was just set."""

    email: str
    password: str
    password_set: bool


def login_file() -> Path:
    """Where the demo login is kept between runs: var/demo-login.txt (readable by its owner)."""
    return Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var")) / LOGIN_FILE_NAME


def _read_login_file(path: Path) -> tuple[str, str] | None:
    """(email, password) from the login file, or None when it is missing or unreadable."""
    try:
        email, password = path.read_text().splitlines()[:2]
    except (OSError, ValueError):
        return None
    return email.strip(), password.strip()


def write_login_file(login: DemoLogin, path: Path | None = None) -> Path:
    """Write `email\\npassword\\n`, readable by the owner only (the password is in clear)."""
    path = path or login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(f"{login.email}\n{login.password}\n")
    return path


def ensure_demo_login(account: Account, *, email: str, path: Path | None = None) -> DemoLogin:
    """A staff superuser who owns the demo account; the password comes from the login file.

    A new user, or one whose password the file does not hold, gets a new random password;
    the caller writes the file once the transaction has committed.
    """
    path = path or login_file()
    User = get_user_model()
    user = User.objects.filter(username=email).first()
    stored = _read_login_file(path)
    password_set = False
    if user is not None and stored is not None and stored[0] == email and stored[1]:
        password = stored[1]
    else:
        password = secrets.token_urlsafe(12)
        password_set = True
    if user is None:
        user = User.objects.create_user(username=email, email=email, password=password)
    elif password_set:
        user.set_password(password)
        user.save(update_fields=["password"])
    if not (user.is_staff and user.is_superuser and user.is_active):
        user.is_staff = user.is_superuser = user.is_active = True
        user.save(update_fields=["is_staff", "is_superuser", "is_active"])
    Membership.objects.update_or_create(user=user, account=account, defaults={"role": Role.OWNER})
    return DemoLogin(email=email, password=password, password_set=password_set)


def run(*, email: str = DEFAULT_LOGIN_EMAIL, reset: bool = False, now: datetime):
    """What `load_demo` does: load (or find) the demo data and its login in one transaction,
    then write the login file once that transaction has committed."""
    with transaction.atomic():
        result = load_demo(now=now, reset=reset)
        login = ensure_demo_login(result.account, email=email)
    if login.password_set:
        write_login_file(login)
    return result, login


# --- reporting --------------------------------------------------------------------------------


def summary(account: Account, livemode: bool) -> dict:
    """Counts of what one mode of `account` holds, with subscriptions and invoices by status."""
    scope = {"account": account, "livemode": livemode}

    def by_status(model) -> dict:
        rows = model.objects.filter(**scope).values_list("status").annotate(n=Count("pk"))
        return dict(sorted(rows, key=lambda row: (-row[1], row[0])))

    return {
        "products": Product.objects.filter(**scope).count(),
        "prices": Price.objects.filter(**scope).count(),
        "coupons": Coupon.objects.filter(**scope).count(),
        "customers": Customer.objects.filter(**scope).count(),
        "payment_methods": PaymentMethod.objects.filter(**scope).count(),
        "subscriptions": by_status(Subscription),
        "invoices": by_status(Invoice),
        "payment_intents": by_status(PaymentIntent),
        "events": Event.objects.filter(**scope).count(),
    }


def describe(counts: dict) -> list[str]:
    """Human lines for a `summary`."""

    def statuses(values: dict) -> str:
        total = sum(values.values())
        inner = ", ".join(f"{n} {status}" for status, n in values.items())
        return f"{total} ({inner})" if inner else "0"

    return [
        f"{counts['products']} products, {counts['prices']} prices, "
        f"{counts['coupons']} coupons, {counts['customers']} customers, "
        f"{counts['payment_methods']} cards, {counts['events']} events",
        f"subscriptions: {statuses(counts['subscriptions'])}",
        f"invoices: {statuses(counts['invoices'])}",
        f"payment intents: {statuses(counts['payment_intents'])}",
    ]
