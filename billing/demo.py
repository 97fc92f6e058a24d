"""A believable, deterministic demo account: `python manage.py load_demo`.

"Northwind Software" sells three products with monthly and annual prices in USD and EUR. Its
test-mode history is not written by hand: about two hundred customers join a test clock
("Northwind demo") over the six months before today, and the billing engine does the rest, as
it would for a real account. Customers are created, given cards and subscribed through the
services, at staggered moments; between those moments the clock advances and the engine runs
what falls due (trial ends, renewals, finalizations an hour later, payment retries, incomplete
expiry, overdue notices). Some customers then act as customers do — they confirm 3-D Secure,
add a card during their trial, switch to a card that declines, change seats, ask to cancel —
and the merchant cancels a few subscriptions, writes off bad debt and sends a few manual
invoices. Every invoice, payment intent and event of the demo's customers comes from those
rules; the statuses they end in are whatever the rules make of that history. At the end the
clock stands at the moment the command ran, ready to be advanced from the dashboard.

A handful of live-mode customers are subscribed on wall time through the same services, so the
dashboard's live/test switch shows a difference; their renewals run through the worker.

Every random choice comes from one seeded `random.Random`, and every moment is relative to the
moment the command runs, so every run builds the same shape (the same customers, the same
scenarios, the same statuses) and the data always looks current. Only reserved `.example`
domains are used: nothing here can reach a real inbox.
"""

import calendar
import random
import secrets
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count

from billing import clocks, events, periods
from billing.choices import (
    AfterRetriesInvoice,
    AfterRetriesSubscription,
    CollectionMethod,
    CouponDuration,
    Interval,
    InvoiceStatus,
    JobStatus,
    MissingPaymentMethodBehavior,
    PaymentIntentStatus,
    PriceType,
    RetryMode,
    Role,
    SubscriptionStatus,
    UsageType,
)
from billing.models import (
    Account,
    ApiKey,
    ApplicationFee,
    BalanceTransaction,
    Coupon,
    Customer,
    CustomerBalanceTransaction,
    Discount,
    DueJob,
    Event,
    ExchangeRate,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    Membership,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    RecoverySettings,
    Subscription,
    SubscriptionItem,
    TestClock,
    Transfer,
)
from billing.models.accounts import hash_api_key
from billing.services import invoices as invoicing
from billing.services import issue_api_key, update_recovery_settings
from billing.services import subscriptions as subscribing
from billing.services.connect import create_connected_account
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from notifications.services.settings import update_email_settings

SEED = 20240917
ACCOUNT_NAME = "Northwind Software"
# The marker that tells the demo account from real ones (idempotency and --reset rely on it).
MARKER_KEY, MARKER_VALUE = "demo", "true"
DEFAULT_LOGIN_EMAIL = "demo@relance.local"
LOGIN_FILE_NAME = "demo-login.txt"
EUR_TO_USD = Decimal("1.08")
CLOCK_NAME = "Northwind demo"

# Connect (SPEC R-CON-*): Northwind is a platform. A reseller receives destination charges for
# the customers it brought; a studio bills its own members on Northwind with a platform fee.
PARTNER_NAME = "Atlas Resellers"
PARTNER_EVERY = 8
PARTNER_FEE_PERCENT = Decimal("20")
STUDIO_NAME = "Harbor Yoga Studio"
STUDIO_CLOCK_NAME = "Harbor Yoga demo"
STUDIO_FEE_PERCENT = Decimal("10")
STUDIO_MEMBERS = (
    ("Maya Lindqvist", "maya.lindqvist@mail.example", "4242424242424242"),
    ("Tomás Ferreira", "tomas.ferreira@inbox.example", "5555555555554444"),
    ("Aiko Tanaka", "aiko.tanaka@mail.example", "4242424242424242"),
    ("Noah Okafor", "noah.okafor@post.example", "4000000000000341"),
    ("Lea Schmitt", "lea.schmitt@webmail.example", "4242424242424242"),
)
# The test clock starts this many months before the day the command runs.
HISTORY_MONTHS = 6

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
PRO_SEATS = (1, 1, 2, 3, 3, 4, 5, 5, 8, 10, 12, 15)

# Revenue recovery in test mode: retry 3, 5 and 7 days after the previous attempt (four
# attempts within 15 days), then mark the subscription unpaid and leave the invoice open.
TEST_RECOVERY = {
    "retry_mode": RetryMode.CUSTOM,
    "retry_days": [3, 5, 7],
    "after_retries_subscription": AfterRetriesSubscription.UNPAID,
    "after_retries_invoice": AfterRetriesInvoice.OPEN,
    "upcoming_renewal_days": 7,
}
RETRY_WINDOW_DAYS = 15
TRIAL_DAYS = 14

# The scenarios the test-mode customers play, and how many play each. A scenario says how the
# customer starts (card, trial, collection) and what they or the merchant do later; where they
# stand today is left to the engine. Arrival windows (days before the command runs) put each
# scenario where its outcome is still current today: trials started within the last two weeks
# are still trialing, a first payment that failed less than 23 hours ago is still incomplete,
# a renewal that failed less than 15 days ago is still being retried (past due)…
TEST_ROLES = {
    # Pays by card; some later switch to a card that declines, or change seats.
    "active": 70,
    # The same, with a card that expires next month.
    "active_expiring_card": 6,
    # Asked to cancel at the end of the current period / of a period that has ended since.
    "cancel_requested": 3,
    "canceled_at_period_end": 4,
    # Canceled at once by the merchant, at the customer's request.
    "canceled_by_merchant": 3,
    # Invoiced with days to pay; most pay each invoice with a card (some late), a few never.
    "send_invoice": 10,
    # A 14-day trial started within the last two weeks, with a card / without one.
    "trialing": 10,
    "trialing_no_card": 5,
    # A trial, with a card, that ended: billed since.
    "trial_converted": 12,
    # A trial started without a card; one was added before it ended.
    "trial_card_added": 4,
    # A trial without a card that ended: paused / canceled, as its settings say.
    "trial_paused": 4,
    "trial_canceled": 2,
    # A trial whose first charge failed (a declining card, or none) less than 15 days ago…
    "trial_past_due": 5,
    # … or longer ago: the retries are over, the subscription is unpaid…
    "trial_unpaid": 4,
    # … and the merchant wrote the invoice off and canceled.
    "trial_written_off": 2,
    # The first payment failed (or awaits 3-D Secure) within the last 23 hours / longer ago.
    "incomplete": 3,
    "incomplete_expired": 4,
    # A 3-D Secure card: the first payment was authenticated, renewals wait for the customer.
    "authenticates": 2,
    # Signed up, never subscribed.
    "lead": 10,
}
LIVE_ROLES = {"active": 4, "trialing": 1}

# Days before the command ran between which customers of each scenario arrive.
ARRIVALS = {
    "active": (0.2, 999),
    "active_expiring_card": (0.2, 999),
    "cancel_requested": (3, 999),
    "canceled_at_period_end": (45, 999),
    "canceled_by_merchant": (40, 999),
    "send_invoice": (3, 999),
    "trialing": (0.2, TRIAL_DAYS - 1.5),
    "trialing_no_card": (0.2, TRIAL_DAYS - 1.5),
    "trial_converted": (TRIAL_DAYS + 1, 999),
    "trial_card_added": (TRIAL_DAYS + 1, 999),
    "trial_paused": (TRIAL_DAYS + 1.5, 120),
    "trial_canceled": (TRIAL_DAYS + 1.5, 150),
    "trial_past_due": (TRIAL_DAYS + 1.2, TRIAL_DAYS + RETRY_WINDOW_DAYS - 2),
    "trial_unpaid": (TRIAL_DAYS + RETRY_WINDOW_DAYS + 3, 150),
    "trial_written_off": (TRIAL_DAYS + RETRY_WINDOW_DAYS + 25, 160),
    "incomplete": (1 / 24, 20 / 24),
    "incomplete_expired": (2, 999),
    "authenticates": (35, 999),
    "lead": (0.2, 999),
}
TRIAL_ROLES = {
    "trialing",
    "trialing_no_card",
    "trial_converted",
    "trial_card_added",
    "trial_paused",
    "trial_canceled",
    "trial_past_due",
    "trial_unpaid",
    "trial_written_off",
}
FAILING_TRIAL_ROLES = {"trial_past_due", "trial_unpaid", "trial_written_off"}
BILLING_ROLES = {"active", "active_expiring_card"}
CANCELING_ROLES = {"cancel_requested", "canceled_at_period_end", "canceled_by_merchant"}

# Stripe's test card numbers (SPEC R-INV-10), by what they do.
SUCCEEDING_CARDS = (
    ("4242424242424242", 6),  # Visa
    ("5555555555554444", 3),  # Mastercard
    ("4000056655665556", 1),  # Visa debit
    ("378282246310005", 1),  # American Express
    ("6011111111111117", 1),  # Discover
)
DECLINING_CARDS = (
    "4000000000000002",  # generic decline
    "4000000000009995",  # insufficient funds
    "4000000000000341",  # attaches, then every charge fails
)
AUTHENTICATING_CARD = "4000002500003155"  # 3-D Secure on every charge

CANCEL_FEEDBACK = (
    ("too_expensive", "We had to cut tooling costs this quarter."),
    ("switched_service", "Moved everything to an in-house tool."),
    ("unused", None),
    ("missing_features", "We need a native HubSpot integration."),
    ("too_complex", None),
    ("customer_service", None),
    ("other", "Company acquired; consolidating vendors."),
)
# One-off work billed on manual invoices: (description, amount in USD cents, in EUR cents).
ONE_OFF_WORK = (
    ("Onboarding and data migration", 150000, 140000),
    ("Custom integration work (10 hours)", 120000, 110000),
    ("Team training session", 45000, 42000),
    ("Premium support, first quarter", 60000, 55000),
    ("Historical data import", 80000, 75000),
)
# What becomes of the manual invoices, one each.
MANUAL_OUTCOMES = ("paid", "paid", "open", "draft", "void", "uncollectible")

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


# --- dates ------------------------------------------------------------------------------------


def add_months(value: datetime, months: int) -> datetime:
    """`value` moved by whole months, clamped to the month's end (Jan 31 + 1 month → Feb 28)."""
    index = value.year * 12 + value.month - 1 + months
    year, month0 = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month0 + 1)[1])
    return value.replace(year=year, month=month0 + 1, day=day)


def start_of_day(moment: datetime) -> datetime:
    """Midnight UTC of `moment`'s day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def clock_start(now: datetime) -> datetime:
    """Where the demo's test clock starts: midnight, HISTORY_MONTHS months before `now`."""
    return add_months(start_of_day(now), -HISTORY_MONTHS)


# --- plans: all the randomness ----------------------------------------------------------------


@dataclass
class Action:
    """Something a customer (or the merchant) does at `at`, through the services."""

    at: datetime
    kind: str
    args: dict = field(default_factory=dict)


@dataclass
class SubscriptionPlan:
    """What the customer subscribes to when they arrive, and how."""

    product_key: str
    interval: str
    currency: str
    quantity: int
    trial_days: int | None = None
    missing_payment_method: str = MissingPaymentMethodBehavior.CREATE_INVOICE
    collection_method: str = CollectionMethod.CHARGE_AUTOMATICALLY
    days_until_due: int | None = None
    coupon_code: str | None = None


@dataclass
class CustomerPlan:
    """A customer: who they are, when they arrive, their card, subscription and later actions."""

    role: str
    arrival: datetime
    name: str
    email: str
    metadata: dict
    timezone: str
    address: dict | None
    phone: str
    description: str
    locales: list
    card: dict | None
    subscription: SubscriptionPlan | None
    actions: list = field(default_factory=list)
    customer: Customer | None = None
    subscription_id: str | None = None


def _luhn_complete(partial: str) -> str:
    """`partial` followed by the check digit that makes it a valid card number."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return partial + str((10 - total % 10) % 10)


class Planner:
    """Draws customers and their scenarios from one seeded random generator.

    Moments are drawn as offsets before `now` (whole seconds), never before the clock's start.
    """

    def __init__(self, rng: random.Random, now: datetime, start: datetime, livemode: bool):
        self.rng = rng
        self.now = now.replace(microsecond=0)
        self.start = start
        self.livemode = livemode
        self.emails: set[str] = set()
        # The days the clock covers; arrivals stay a little after its start.
        self.horizon = (self.now - start).total_seconds() / 86400 - 0.05

    # Small random helpers; every one of them goes through `self.rng`.
    def ago(self, low_days: float, high_days: float, growth: float = 1.0) -> datetime:
        """A moment between `low_days` and `high_days` before now (within the clock's span);
        with `growth` above 1, recent moments are likelier."""
        high = min(high_days, self.horizon)
        low = min(low_days, high)
        days = low + (high - low) * self.rng.random() ** growth
        return self.now - timedelta(seconds=int(days * 86400))

    def later(self, moment: datetime, low_days: float, high_days: float) -> datetime:
        """A moment between `low_days` and `high_days` after `moment`."""
        return _later(self.rng, moment, low_days, high_days)

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
            or role == "send_invoice"
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

        card_kind = self.card_kind(role)
        if self.livemode:
            arrival = self.now
        elif role == "send_invoice" and card_kind is None:
            # The ones who never pay have not been customers for long.
            arrival = self.ago(20, 70)
        elif role in BILLING_ROLES:
            # A growing business: more of its paying customers came recently.
            arrival = self.ago(*ARRIVALS[role], growth=1.5)
        else:
            arrival = self.ago(*ARRIVALS[role])
        card = None
        if card_kind is not None:
            card = self.plan_card(role, card_kind)
            card["billing_details"] = {"name": person, "email": email, "address": address}
        plan = CustomerPlan(
            role=role,
            arrival=arrival,
            name=name,
            email=email,
            metadata=metadata,
            timezone=tz if rng.random() < 0.85 else "",
            address=address,
            phone=phone,
            description=description,
            locales=[locale] if rng.random() < 0.5 else [],
            card=card,
            subscription=subscription,
        )
        if not self.livemode:
            self.plan_actions(plan)
        return plan

    def unique_email(self, local: str, domain: str) -> str:
        """`local@domain`, with a number added when another demo customer has it already."""
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{self.rng.randint(2, 99)}@{domain}"
        self.emails.add(email)
        return email

    def card_kind(self, role: str) -> str | None:
        """What the customer's card does when charged ("succeed", "decline", "3ds"), or None."""
        rng = self.rng
        if role in {"trialing_no_card", "trial_card_added", "trial_paused", "trial_canceled"}:
            return None
        if role == "lead":
            return "succeed" if rng.random() < 0.3 else None
        if role == "send_invoice":
            # Most pay their invoices with a card; the others have never paid.
            return "succeed" if rng.random() < 0.75 else None
        if role in FAILING_TRIAL_ROLES:
            return "decline" if rng.random() < 0.75 else None
        if role == "authenticates":
            return "3ds"
        if role in {"incomplete", "incomplete_expired"}:
            return "3ds" if rng.random() < 0.3 else "decline"
        return "succeed"

    def plan_card(self, role: str, kind: str) -> dict:
        """The card's number (a Stripe test number; a random valid Visa in live mode), expiry."""
        rng = self.rng
        if kind == "3ds":
            number = AUTHENTICATING_CARD
        elif kind == "decline":
            number = rng.choice(DECLINING_CARDS)
        else:
            number = rng.choices(
                [number for number, _ in SUCCEEDING_CARDS],
                weights=[weight for _, weight in SUCCEEDING_CARDS],
            )[0]
        if self.livemode:
            number = _luhn_complete("4" + "".join(str(rng.randint(0, 9)) for _ in range(14)))
        if role == "active_expiring_card":
            # Expires at the end of next month: the expiring-card reminder has work to do.
            next_month = add_months(self.now, 1)
            exp_month, exp_year = next_month.month, next_month.year
        else:
            exp_month, exp_year = rng.randint(1, 12), self.now.year + rng.randint(1, 4)
        return {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": "123"}

    def plan_subscription(self, role: str, currency: str) -> SubscriptionPlan:
        """The price, quantity, trial and collection the customer subscribes with."""
        rng = self.rng
        product_key = self.weighted(PRODUCT_WEIGHTS)
        if role == "send_invoice":
            product_key = rng.choice(("enterprise", "enterprise", "pro"))
        yearly = rng.random() < (0.1 if role in TRIAL_ROLES else 0.25)
        if role in {"authenticates", "canceled_at_period_end"}:
            yearly = False  # a renewal (or the period's end) must have come round
        quantity = rng.choice(PRO_SEATS) if product_key == "pro" else 1
        plan = SubscriptionPlan(
            product_key=product_key,
            interval=Interval.YEAR if yearly else Interval.MONTH,
            currency=currency,
            quantity=quantity,
        )
        if role in TRIAL_ROLES:
            plan.trial_days = TRIAL_DAYS
            if role == "trial_converted":
                plan.trial_days = rng.choice((7, 14, 14, 30))
            if role == "trial_paused":
                plan.missing_payment_method = MissingPaymentMethodBehavior.PAUSE
            elif role == "trial_canceled":
                plan.missing_payment_method = MissingPaymentMethodBehavior.CANCEL
            elif role == "trialing_no_card":
                plan.missing_payment_method = rng.choice(tuple(MissingPaymentMethodBehavior))
        if role == "send_invoice":
            plan.collection_method = CollectionMethod.SEND_INVOICE
            plan.days_until_due = rng.choice((14, 14, 30))
        if role in BILLING_ROLES | {"trial_converted"} and rng.random() < 0.12:
            plan.coupon_code = (
                "FRIENDS10" if currency == "usd" and rng.random() < 0.4 else "WELCOME20"
            )
        return plan

    def cancellation_request(self) -> dict:
        """Stripe's cancellation_details of a customer who asked to cancel, with their feedback."""
        feedback, comment = self.rng.choice(CANCEL_FEEDBACK)
        details = {"reason": "cancellation_requested", "feedback": feedback}
        if comment:
            details["comment"] = comment
        return details

    def plan_actions(self, plan: CustomerPlan) -> None:
        """What the customer (or the merchant) does after arriving; only what happens by now."""
        rng, role, arrival = self.rng, plan.role, plan.arrival
        actions = []
        if role in BILLING_ROLES:
            if rng.random() < 0.07:
                card = {
                    **self.plan_card(role, "decline"),
                    "billing_details": plan.card["billing_details"],
                }
                at = self.later(arrival, 3, 200)
                actions.append(Action(at, "switch_card", {"card": card}))
            sp = plan.subscription
            if sp.product_key == "pro" and rng.random() < 0.2:
                seats = max(1, sp.quantity + rng.choice((-2, -1, 1, 2, 3, 5)))
                actions.append(
                    Action(self.later(arrival, 5, 120), "change_seats", {"quantity": seats})
                )
        elif role in CANCELING_ROLES:
            actions.append(self.cancellation(plan))
        elif role == "trial_card_added":
            card = self.plan_card(role, "succeed")
            card["billing_details"] = {"name": plan.name, "email": plan.email}
            actions.append(
                Action(self.later(arrival, 1, TRIAL_DAYS - 2), "new_card", {"card": card})
            )
        elif role == "trial_written_off":
            # Some time after the subscription became unpaid.
            gave_up = TRIAL_DAYS + RETRY_WINDOW_DAYS + 1
            actions.append(Action(self.later(arrival, gave_up + 2, gave_up + 20), "write_off"))
        elif role == "authenticates":
            confirmed = arrival + timedelta(seconds=rng.randint(120, 2400))
            actions.append(Action(confirmed, "confirm_payment"))
        elif role == "send_invoice" and plan.card is not None:
            actions.extend(self.invoice_payments(plan))
        plan.actions = [action for action in actions if action.at < self.now]

    def cancellation(self, plan: CustomerPlan) -> Action:
        """When and how the customer asks to cancel (see the CANCELING_ROLES)."""
        rng, arrival, sp = self.rng, plan.arrival, plan.subscription
        details = self.cancellation_request()
        if plan.role == "cancel_requested":
            # During the current period, so it is still running today.
            current = periods.next_boundary(arrival, sp.interval, 1, self.now)
            since = max(arrival, periods.shift(current, sp.interval, 1, -1))
            asked = since + (self.now - since) * (0.1 + 0.85 * rng.random())
            return Action(asked, "cancel_at_period_end", details)
        # More than a month ago: the period it was asked in has ended since.
        asked = arrival + (self.now - timedelta(days=32) - arrival) * rng.random()
        if plan.role == "canceled_at_period_end":
            return Action(asked, "cancel_at_period_end", details)
        return Action(asked, "cancel_now", details)

    def invoice_payments(self, plan: CustomerPlan) -> list[Action]:
        """A send_invoice customer paying each invoice some days after it was sent: mostly on
        time, some always late (after the overdue notice)."""
        sp = plan.subscription
        # Their own generator: how many invoices there were depends on the day the command
        # runs, and must not shift the draws of the customers planned after this one.
        rng = random.Random(self.rng.random())
        if rng.random() < 0.7:
            delay = (1, sp.days_until_due - 1)
        else:
            delay = (sp.days_until_due + 1, sp.days_until_due + 12)
        actions = []
        cycle = 0
        while True:
            # The first invoice is sent at once; renewals an hour after the period ends.
            sent = periods.shift(plan.arrival, sp.interval, 1, cycle)
            if cycle:
                sent += invoicing.FINALIZATION_DELAY
            if sent >= self.now:
                return actions
            actions.append(Action(_later(rng, sent, *delay), "pay_open_invoices"))
            cycle += 1


def plan_manual_invoices(rng: random.Random, plans: list[CustomerPlan], now: datetime) -> None:
    """A few one-off invoices for established customers who pay by card, one per outcome."""
    candidates = [
        plan
        for plan in plans
        if plan.role == "active"
        and plan.card is not None
        and not plan.actions
        and (now - plan.arrival).days > 60
    ]
    for outcome, plan in zip(
        MANUAL_OUTCOMES, rng.sample(candidates, len(MANUAL_OUTCOMES)), strict=True
    ):
        description, usd, eur = rng.choice(ONE_OFF_WORK)
        amount = usd if plan.subscription.currency == "usd" else eur
        seconds = rng.randint(5 * 86400, int((now - plan.arrival).total_seconds()) - 86400)
        at = plan.arrival + timedelta(seconds=seconds)
        # Early enough for the void or the write-off to have happened by now.
        if outcome == "uncollectible":
            at = min(at, now - timedelta(days=50))
        if outcome == "void":
            at = min(at, now - timedelta(days=10))
        plan.actions.append(
            Action(
                at,
                "manual_invoice",
                {"outcome": outcome, "description": description, "amount": amount},
            )
        )
        if outcome == "void":
            plan.actions.append(Action(_later(rng, at, 2, 8), "void_manual_invoice"))
        elif outcome == "uncollectible":
            plan.actions.append(Action(_later(rng, at, 45, 49), "write_off_manual_invoice"))


def plan_mode(*, livemode: bool, now: datetime, seed: int = SEED) -> list[CustomerPlan]:
    """One mode's customers and their scenarios; each mode has its own random stream."""
    rng = random.Random(f"{seed}-{'live' if livemode else 'test'}")
    planner = Planner(rng, now, clock_start(now), livemode)
    plans = planner.plan_customers(LIVE_ROLES if livemode else TEST_ROLES)
    if not livemode:
        plan_manual_invoices(rng, plans, planner.now)
    return plans


def _later(rng: random.Random, moment: datetime, low_days: float, high_days: float):
    """A moment between `low_days` and `high_days` after `moment`, to the second."""
    return moment + timedelta(seconds=rng.randint(int(low_days * 86400), int(high_days * 86400)))


def _slug(text: str, joiner: str = "") -> str:
    """ASCII letters and digits of `text`, lowercased: "Van der Berg" → "vanderberg"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = ["".join(ch for ch in word if ch.isalnum()) for word in ascii_text.lower().split()]
    return joiner.join(word for word in words if word)


# --- the catalog ------------------------------------------------------------------------------


@dataclass
class Catalog:
    """One mode's products, prices (by product, interval and currency) and coupons."""

    products: dict = field(default_factory=dict)
    prices: dict = field(default_factory=dict)
    coupons: dict = field(default_factory=dict)


def build_catalog(account: Account, livemode: bool, created: datetime) -> Catalog:
    """Three products, each priced monthly and yearly in USD and EUR, and two coupons, written in
    bulk with their `product.created` / `price.created` events as history (there are no catalog
    services: the dashboard reads the catalog, it does not edit it)."""
    catalog = Catalog()
    history = []
    scope = {"account": account, "livemode": livemode}
    products, prices = [], []
    for key, name, description, unit_label, usd, eur in CATALOG:
        product = Product(
            **scope,
            name=name,
            description=description,
            unit_label=unit_label,
            metadata={"tier": key},
            created=created,
        )
        products.append(product)
        catalog.products[key] = product
        history.append(product)
        for interval, factor in ((Interval.MONTH, 1), (Interval.YEAR, 10)):
            for currency, monthly in (("usd", usd), ("eur", eur)):
                created += timedelta(seconds=7)
                adjective = "monthly" if interval == Interval.MONTH else "yearly"
                price = Price(
                    **scope,
                    product=product,
                    currency=currency,
                    unit_amount=monthly * factor,
                    type=PriceType.RECURRING,
                    recurring_interval=interval,
                    recurring_interval_count=1,
                    recurring_usage_type=UsageType.LICENSED,
                    nickname=f"{name} {adjective} ({currency.upper()})",
                    lookup_key=f"{key}_{adjective}_{currency}",
                    created=created,
                )
                prices.append(price)
                catalog.prices[key, interval, currency] = price
                if interval == Interval.MONTH and currency == "usd":
                    product.default_price = price
                history.append(price)
        created += timedelta(minutes=3)
    catalog.coupons["WELCOME20"] = Coupon(
        **scope,
        code="WELCOME20",
        name="Welcome: 20% off 3 months",
        percent_off=Decimal("20"),
        duration=CouponDuration.REPEATING,
        duration_in_months=3,
        created=created + timedelta(days=20),
    )
    catalog.coupons["FRIENDS10"] = Coupon(
        **scope,
        code="FRIENDS10",
        name="Friends of Northwind: $10 off",
        amount_off=1000,
        currency="usd",
        duration=CouponDuration.FOREVER,
        created=created + timedelta(days=41),
    )
    Product.objects.bulk_create(products)
    Price.objects.bulk_create(prices)
    Coupon.objects.bulk_create(catalog.coupons.values())
    events.record_history(
        [
            events.build(f"{obj.OBJECT}.created", obj, created=obj.created)
            for obj in sorted(history, key=lambda obj: obj.created)
        ]
    )
    return catalog


# --- running the scenarios through the engine -------------------------------------------------


class Simulation:
    """Plays one mode's plans through the services, in time order.

    In test mode every customer lives on the demo's test clock: before each step the clock is
    advanced to that step's moment, which runs everything that fell due on the way (no worker
    runs during the command, so the clock is advanced here, synchronously). In live mode
    everything happens now, on wall time.
    """

    def __init__(
        self, account: Account, catalog: Catalog, *, livemode: bool, clock=None, partner=None
    ):
        self.account = account
        self.catalog = catalog
        self.livemode = livemode
        self.clock = clock
        # A connected reseller: every PARTNER_EVERY-th card-paying sign-up came through it, so
        # its subscription transfers to it less the platform's fee (destination charges).
        self.partner = partner
        self.arrivals = 0

    def run(self, plans: list[CustomerPlan], until: datetime | None = None) -> None:
        """Every plan's arrival and actions in time order; then the clock is brought to `until`."""
        steps = []
        for index, plan in enumerate(plans):
            steps.append((plan.arrival, index, 0, "arrive", plan, {}))
            for number, action in enumerate(plan.actions, start=1):
                steps.append((action.at, index, number, action.kind, plan, action.args))
        steps.sort(key=lambda step: step[:3])
        for at, _, _, kind, plan, args in steps:
            self.advance_to(at)
            if self.clock is None:
                getattr(self, kind)(plan, **args)
                continue
            # The clock stands still during a step: its time is known without asking again.
            with clocks.running(self.clock.pk, self.clock.frozen_time):
                getattr(self, kind)(plan, **args)
        if until is not None:
            self.advance_to(until)

    def advance_to(self, moment: datetime) -> None:
        """Advance the test clock to `moment`, running what falls due (nothing in live mode).

        The service runs the clock's due jobs here, synchronously, instead of handing them to a
        worker after commit: no worker runs during the command, and the next step needs them done.
        """
        if self.clock is None or moment <= self.clock.frozen_time:
            return
        self.clock = advance_test_clock(self.clock, to=moment, synchronously=True)

    def subscription(self, plan: CustomerPlan) -> Subscription | None:
        if plan.subscription_id is None:
            return None
        return Subscription.objects.select_related("customer").get(pk=plan.subscription_id)

    # The steps. Each re-reads what it needs and does nothing when it no longer applies.

    def arrive(self, plan: CustomerPlan) -> None:
        """The customer signs up, adds their card and subscribes."""
        customer = create_customer(
            self.account,
            livemode=self.livemode,
            test_clock=self.clock,
            email=plan.email,
            name=plan.name,
            phone=plan.phone,
            description=plan.description,
            address=plan.address,
            timezone=plan.timezone,
            metadata=plan.metadata,
            preferred_locales=plan.locales,
        )
        plan.customer = customer
        if plan.card is not None:
            card = {key: plan.card[key] for key in ("number", "exp_month", "exp_year", "cvc")}
            add_card(
                customer, card=card, billing_details=plan.card["billing_details"], set_default=True
            )
        sp = plan.subscription
        if sp is None:
            return
        options = {}
        if sp.trial_days:
            options["trial_period_days"] = sp.trial_days
            options["missing_payment_method"] = sp.missing_payment_method
        if sp.collection_method == CollectionMethod.SEND_INVOICE:
            options["collection_method"] = sp.collection_method
            options["days_until_due"] = sp.days_until_due
        if sp.coupon_code:
            options["coupon"] = self.catalog.coupons[sp.coupon_code]
        price = self.catalog.prices[sp.product_key, sp.interval, sp.currency]
        self.arrivals += 1
        metadata = {"plan_tier": sp.product_key}
        if (
            self.partner is not None
            and sp.collection_method != CollectionMethod.SEND_INVOICE
            and self.arrivals % PARTNER_EVERY == 0
        ):
            options["transfer_data"] = {"destination": self.partner.pk}
            options["application_fee_percent"] = PARTNER_FEE_PERCENT
            metadata["channel"] = "partner"
        subscription = subscribing.create_subscription(
            customer,
            items=[{"price": price, "quantity": sp.quantity}],
            metadata=metadata,
            **options,
        )
        plan.subscription_id = subscription.pk

    def confirm_payment(self, plan: CustomerPlan) -> None:
        """The customer completes 3-D Secure for the payment that asked for it."""
        subscription = self.subscription(plan)
        intent = subscription.latest_invoice.payment_intent if subscription.latest_invoice else None
        if intent is not None and intent.status == PaymentIntentStatus.REQUIRES_ACTION:
            invoicing.confirm_payment_intent(intent)

    def new_card(self, plan: CustomerPlan, card: dict) -> None:
        """The customer adds a card (and makes it their default)."""
        details = card.get("billing_details")
        card = {key: card[key] for key in ("number", "exp_month", "exp_year", "cvc")}
        add_card(plan.customer, card=card, billing_details=details, set_default=True)

    # Switching to a card that declines is adding it, as far as the services are concerned.
    switch_card = new_card

    def cancel_at_period_end(self, plan: CustomerPlan, **details) -> None:
        """The customer asks to cancel when the period ends."""
        subscription = self.subscription(plan)
        if subscription.status in subscribing.ENDED or subscription.cancel_at_period_end:
            return
        subscribing.cancel_subscription(
            subscription, at_period_end=True, cancellation_details=details
        )

    def cancel_now(self, plan: CustomerPlan, **details) -> None:
        """The merchant cancels the subscription at once, at the customer's request."""
        subscription = self.subscription(plan)
        if subscription.status not in subscribing.ENDED:
            subscribing.cancel_subscription(subscription, cancellation_details=details)

    def change_seats(self, plan: CustomerPlan, quantity: int) -> None:
        """The customer adds or removes seats: prorated onto the next invoice."""
        subscription = self.subscription(plan)
        live = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
        if subscription.status not in live:
            return
        item = subscription.items.get()
        if item.quantity != quantity:
            subscribing.update_subscription(
                subscription, items=[{"id": item.pk, "quantity": quantity}]
            )

    def write_off(self, plan: CustomerPlan) -> None:
        """The merchant gives up on an unpaid subscription: its open invoices are written off
        and it is canceled."""
        subscription = self.subscription(plan)
        if subscription.status != SubscriptionStatus.UNPAID:
            return
        for invoice in subscription.invoices.filter(status=InvoiceStatus.OPEN).order_by("created"):
            invoicing.mark_uncollectible(invoice)
        subscription.refresh_from_db()
        if subscription.status not in subscribing.ENDED:
            subscribing.cancel_subscription(
                subscription,
                cancellation_details={"reason": "payment_failed", "comment": "Written off."},
            )

    def pay_open_invoices(self, plan: CustomerPlan) -> None:
        """A send_invoice customer pays what they owe with their card."""
        invoices = Invoice.objects.filter(
            subscription_id=plan.subscription_id, status=InvoiceStatus.OPEN
        )
        for invoice in invoices.order_by("created"):
            invoicing.pay_invoice(invoice)

    def manual_invoice(self, plan: CustomerPlan, outcome: str, description: str, amount: int):
        """The merchant bills one-off work: left a draft, paid by card, or sent."""
        customer = plan.customer
        invoicing.create_invoice_item(
            customer, amount=amount, currency=plan.subscription.currency, description=description
        )
        sent = outcome in {"open", "void", "uncollectible"}
        invoice = invoicing.create_manual_invoice(
            customer,
            collection_method=CollectionMethod.SEND_INVOICE
            if sent
            else CollectionMethod.CHARGE_AUTOMATICALLY,
            days_until_due=(14 if outcome == "uncollectible" else 30) if sent else None,
            description=description,
        )
        if outcome == "draft":
            return
        invoice = invoicing.finalize_invoice(invoice)
        if outcome == "paid":
            invoicing.pay_invoice(invoice)

    def _manual_invoice(self, plan: CustomerPlan) -> Invoice | None:
        return (
            Invoice.objects.filter(
                customer=plan.customer, billing_reason="manual", status=InvoiceStatus.OPEN
            )
            .order_by("-created")
            .first()
        )

    def void_manual_invoice(self, plan: CustomerPlan) -> None:
        """The merchant voids a manual invoice sent by mistake."""
        invoice = self._manual_invoice(plan)
        if invoice is not None:
            invoicing.void_invoice(invoice)

    def write_off_manual_invoice(self, plan: CustomerPlan) -> None:
        """The merchant writes off a manual invoice that was never paid."""
        invoice = self._manual_invoice(plan)
        if invoice is not None:
            invoicing.mark_uncollectible(invoice)


# --- loading, resetting, logging in -----------------------------------------------------------


@dataclass
class LoadResult:
    """What `load_demo` did."""

    account: Account
    loaded: bool
    deleted: bool = False
    events: int = 0
    seconds: float = 0.0
    failed_jobs: list = field(default_factory=list)


def find_demo_account() -> Account | None:
    """The demo account, recognised by its metadata marker."""
    return (
        Account.objects.filter(**{f"metadata__{MARKER_KEY}": MARKER_VALUE})
        .order_by("created")
        .first()
    )


def delete_demo_account(account: Account) -> None:
    """Delete the demo account, its connected accounts and all their data: the platform's data
    first (its transfers and subscriptions point at the connected accounts), then each
    connected account, then the platform."""
    _delete_account_data(account)
    for connected in Account.objects.filter(platform=account):
        _delete_account_data(connected)
        connected.delete()
    account.delete()


def _delete_account_data(account: Account) -> None:
    """Delete one account's data, dependents first, past PROTECT foreign keys."""
    for model in (
        ApplicationFee,
        Transfer,
        BalanceTransaction,
        Event,
        DueJob,
        PaymentIntent,
        InvoiceLineItem,
        InvoiceItem,
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
        RecoverySettings,
        ExchangeRate,
        ApiKey,
    ):
        model.objects.filter(account=account).delete()


def demo_clock(account: Account) -> TestClock | None:
    """The demo's test clock."""
    return TestClock.objects.filter(account=account, name=CLOCK_NAME).first()


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

    start = clock_start(now)
    plans = {mode: plan_mode(livemode=mode, now=now, seed=seed) for mode in (False, True)}
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
        created=start - timedelta(days=60),
    )
    ExchangeRate.objects.create(account=account, currency="eur", rate=EUR_TO_USD)
    update_recovery_settings(account, livemode=False, **TEST_RECOVERY)
    # Test mode emails only the verified domain (SPEC R-MAIL-8): customers at mail.example get
    # theirs when the demo clock is advanced, the others' show in the email log as not sent.
    update_email_settings(
        account,
        livemode=False,
        verified_domain=PERSONAL_DOMAINS[0],
        upcoming_renewal=True,
        invoice_reminders=True,
    )
    catalogs = {
        mode: build_catalog(account, mode, account.created + timedelta(days=2))
        for mode in (False, True)
    }

    partner = create_connected_account(
        account,
        name=PARTNER_NAME,
        email="billing@atlas-resellers.example",
        branding_display_name="Atlas",
        branding_primary_color="#B45309",
    )
    clock = create_test_clock(account, frozen_time=start, name=CLOCK_NAME)
    Simulation(account, catalogs[False], livemode=False, clock=clock, partner=partner).run(
        plans[False], until=now
    )
    Simulation(account, catalogs[True], livemode=True).run(plans[True])
    load_studio(account, start=start, now=now, seed=seed)

    return LoadResult(
        account=account,
        loaded=True,
        deleted=deleted,
        events=Event.objects.filter(account=account).count(),
        seconds=time.perf_counter() - started,
        # Jobs the engine could not run (the clock moves on past them): reported, not hidden.
        failed_jobs=list(DueJob.objects.filter(account=account, status=JobStatus.FAILED)),
    )


def load_studio(platform: Account, *, start: datetime, now: datetime, seed: int = SEED) -> Account:
    """A connected studio billing its members directly, with the platform's 10% fee on each
    payment (SPEC R-CON-1, R-CON-3), on its own test clock: members join over the months before
    `now`, one with a card that declines."""
    rng = random.Random(seed + 1)
    studio = create_connected_account(
        platform,
        name=STUDIO_NAME,
        email="hello@harbor-yoga.example",
        timezone="Europe/Lisbon",
        branding_display_name="Harbor Yoga",
        branding_primary_color="#047857",
    )
    created = start - timedelta(days=7)
    product = Product.objects.create(
        account=studio, livemode=False, name="Unlimited classes", created=created
    )
    price = Price.objects.create(
        account=studio,
        livemode=False,
        product=product,
        currency="usd",
        unit_amount=4500,
        type=PriceType.RECURRING,
        recurring_interval=Interval.MONTH,
        recurring_interval_count=1,
        recurring_usage_type=UsageType.LICENSED,
        created=created,
    )
    events.emit("product.created", product, created=created)
    events.emit("price.created", price, created=created)
    clock = create_test_clock(studio, frozen_time=start, name=STUDIO_CLOCK_NAME)
    span = max((now - start).days, 1)
    joins = sorted(start + timedelta(days=rng.uniform(0, span * 0.8)) for _ in STUDIO_MEMBERS)
    for (name, email, number), joined in zip(STUDIO_MEMBERS, joins, strict=True):
        if joined > clock.frozen_time:
            clock = advance_test_clock(clock, to=joined, synchronously=True)
        with clocks.running(clock.pk, clock.frozen_time):
            member = create_customer(
                studio, livemode=False, test_clock=clock, email=email, name=name
            )
            card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
            add_card(member, card=card, set_default=True)
            subscribing.create_subscription(
                member,
                items=[{"price": price}],
                application_fee_percent=STUDIO_FEE_PERCENT,
                application=platform,
                payment_behavior="allow_incomplete",
            )
    if now > clock.frozen_time:
        advance_test_clock(clock, to=now, synchronously=True)
    return studio


@dataclass
class DemoLogin:
    """The dashboard login of the demo account, and whether its password was just set; and a
    test-mode API key of the account, kept in the same file (only its hash is in the database)."""

    email: str
    password: str
    password_set: bool
    api_key: str = ""
    api_key_set: bool = False


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


def _read_api_key(path: Path) -> str | None:
    """The API key on the login file's third line, or None."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return lines[2].strip() if len(lines) > 2 and lines[2].strip() else None


def write_login_file(login: DemoLogin, path: Path | None = None) -> Path:
    """Write `email\\npassword\\n` (and the API key on a third line), readable by the owner
    only: the password and the key are in clear."""
    path = path or login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    key_line = f"{login.api_key}\n" if login.api_key else ""
    path.write_text(f"{login.email}\n{login.password}\n{key_line}")
    return path


def ensure_demo_api_key(account: Account, login: DemoLogin, *, path: Path | None = None) -> None:
    """Give `login` a test-mode secret key of the demo account for the /v1 API: the one in the
    login file while it is still the account's and not revoked, else a new one (the caller
    writes the file once the transaction has committed)."""
    stored = _read_api_key(path or login_file())
    if stored and stored.startswith("sk_test_"):
        key = ApiKey.objects.filter(key_hash=hash_api_key(stored), account=account).first()
        if key is not None and key.is_active:
            login.api_key = stored
            return
    _, login.api_key = issue_api_key(account, livemode=False, name="Demo key")
    login.api_key_set = True


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
        ensure_demo_api_key(result.account, login)
    if login.password_set or login.api_key_set:
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
        "clocks": list(
            TestClock.objects.filter(**scope)
            .order_by("created")
            .values_list("name", "frozen_time", "status")
        ),
    }


def describe(counts: dict) -> list[str]:
    """Human lines for a `summary`."""

    def statuses(values: dict) -> str:
        total = sum(values.values())
        inner = ", ".join(f"{n} {status}" for status, n in values.items())
        return f"{total} ({inner})" if inner else "0"

    lines = [
        f"{counts['products']} products, {counts['prices']} prices, "
        f"{counts['coupons']} coupons, {counts['customers']} customers, "
        f"{counts['payment_methods']} cards, {counts['events']} events",
        f"subscriptions: {statuses(counts['subscriptions'])}",
        f"invoices: {statuses(counts['invoices'])}",
        f"payment intents: {statuses(counts['payment_intents'])}",
    ]
    for name, frozen_time, status in counts["clocks"]:
        lines.append(f"test clock {name!r}: {status} at {frozen_time:%Y-%m-%d %H:%M} UTC")
    return lines
