"""Filters as data, checked when saved and compiled into predicates (SPEC R-AUTO-3).

A condition is a dict with a `kind` and its parameters:

    {"kind": "customer_metadata", "key": "plan", "value": "annual"}
    {"kind": "invoice_metadata", "key": "segment", "value": "enterprise"}
    {"kind": "invoice_amount", "min": 10000, "max": None, "currency": "usd"}   # minor units
    {"kind": "subscription_interval", "interval": "year"}                      # or "month"
    {"kind": "products", "products": ["prod_…", "prod_…"]}                    # at least one

All of an automation's conditions must hold. They are evaluated against `Facts`, a lazy view
of the triggering object that loads only what some condition asks for. Amounts compare in the
account's default currency: the invoice's amount due and the threshold are both converted at
the account's exchange rates (`billing.ExchangeRate`: one unit of a currency in the default
currency), and an amount that cannot be converted (no rate) does not hold, so an automation
never runs on a guess. Bounds are inclusive.

`Index` answers "the first automation whose conditions hold" without checking every one: each
automation is filed under one equality its conditions require (a metadata pair, a product, an
interval), so an event only checks the automations filed under what it has, plus those with no
such equality, in priority order.
"""

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.core.exceptions import ValidationError

from automations.choices import ConditionKind, Trigger
from billing import money
from billing.validators import validate_currency

INVOICE_TRIGGERS = frozenset(
    {
        Trigger.INVOICE_DUE_DATE_APPROACHING,
        Trigger.INVOICE_FINALIZED,
        Trigger.INVOICE_OVERDUE,
        Trigger.SUBSCRIPTION_PAYMENT_FAILED,
    }
)
ALL_TRIGGERS = frozenset(Trigger.values)
SUBSCRIPTION_TRIGGERS = INVOICE_TRIGGERS | {Trigger.SUBSCRIPTION_CANCELED}

# Which filters make sense for which trigger ("selon le déclencheur", reference 000): a new
# customer has no invoice or subscription yet; a canceled subscription has no one invoice.
TRIGGERS_FOR = {
    ConditionKind.CUSTOMER_METADATA: ALL_TRIGGERS,
    ConditionKind.INVOICE_METADATA: INVOICE_TRIGGERS,
    ConditionKind.INVOICE_AMOUNT: INVOICE_TRIGGERS,
    ConditionKind.SUBSCRIPTION_INTERVAL: SUBSCRIPTION_TRIGGERS,
    ConditionKind.PRODUCTS: SUBSCRIPTION_TRIGGERS,
}

INTERVALS = {"month": "Monthly", "year": "Annual"}


class Facts:
    """What conditions read about a triggering object (an invoice, subscription or customer).

    Each property is computed on first use, through related managers' `.all()` so rows the
    caller prefetched (the engine's batches do) cost no query.
    """

    def __init__(self, obj, *, account=None, rates: dict | None = None):
        self.obj = obj
        self._account = account
        self._rates = rates

    @cached_property
    def invoice(self):
        from billing.models import Invoice

        return self.obj if isinstance(self.obj, Invoice) else None

    @cached_property
    def subscription(self):
        from billing.models import Subscription

        if isinstance(self.obj, Subscription):
            return self.obj
        if self.invoice is not None and self.invoice.subscription_id:
            return self.invoice.subscription
        return None

    @cached_property
    def customer(self):
        from billing.models import Customer

        if isinstance(self.obj, Customer):
            return self.obj
        return self.obj.customer

    @cached_property
    def customer_metadata(self) -> dict:
        return self.customer.metadata or {}

    @cached_property
    def invoice_metadata(self) -> dict:
        return (self.invoice.metadata or {}) if self.invoice is not None else {}

    @cached_property
    def _prices(self) -> list:
        """The prices the object bills: the invoice's lines', else the subscription's items'."""
        if self.invoice is not None:
            prices = [line.price for line in self.invoice.lines.all() if line.price_id]
            if prices or self.subscription is None:
                return prices
        if self.subscription is not None:
            return [item.price for item in self.subscription.items.all()]
        return []

    @cached_property
    def products(self) -> frozenset:
        return frozenset(price.product_id for price in self._prices)

    @cached_property
    def intervals(self) -> frozenset:
        """ "month" for monthly prices, "year" for annual ones (interval count 1)."""
        found = set()
        prices = (
            [item.price for item in self.subscription.items.all()]
            if self.subscription is not None
            else []
        )
        for price in prices:
            if price.recurring_interval in INTERVALS and (price.recurring_interval_count or 1) == 1:
                found.add(price.recurring_interval)
        return frozenset(found)

    @cached_property
    def account(self):
        if self._account is not None:
            return self._account
        from billing.models import Account

        return Account.objects.only("default_currency").get(pk=self.obj.account_id)

    @cached_property
    def rates(self) -> dict[str, Decimal]:
        if self._rates is not None:
            return self._rates
        from billing.models import ExchangeRate

        return dict(
            ExchangeRate.objects.filter(account_id=self.obj.account_id).values_list(
                "currency", "rate"
            )
        )

    def in_default_currency(self, amount: int, currency: str) -> int | None:
        """`amount` of `currency` in the account's default currency; None without a rate."""
        default = self.account.default_currency
        currency = currency.lower()
        if currency == default:
            return amount
        rate = self.rates.get(currency)
        if rate is None:
            return None
        return money.convert(amount, currency, default, rate)

    @cached_property
    def amount(self) -> int | None:
        """The invoice's amount due in the default currency (None: no invoice, or no rate)."""
        if self.invoice is None:
            return None
        return self.in_default_currency(self.invoice.amount_due, self.invoice.currency)


# --- the registry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionType:
    """One kind of filter: how to check its parameters and how to compile it."""

    kind: str
    clean: Callable[[dict], dict]  # → normalized params; ValidationError keyed by param name
    compile: Callable[[dict], Callable[[Facts], bool]]
    # The equality an event must have for this condition to hold, as index keys (any of them).
    index_keys: Callable[[dict], tuple] = lambda params: ()


def _text(params, name, *, max_length) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({name: "This field is required."})
    value = value.strip()
    if len(value) > max_length:
        raise ValidationError({name: f"At most {max_length} characters."})
    return value


def _clean_metadata(params):
    return {
        "key": _text(params, "key", max_length=40),
        "value": _text(params, "value", max_length=500),
    }


def _compile_customer_metadata(params):
    key, value = params["key"], params["value"]
    return lambda facts: facts.customer_metadata.get(key) == value


def _compile_invoice_metadata(params):
    key, value = params["key"], params["value"]
    return lambda facts: facts.invoice_metadata.get(key) == value


def _amount(params, name):
    value = params.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError({name: "Enter an amount of zero or more."})
    return value


def _clean_amount(params):
    currency = params.get("currency")
    if not isinstance(currency, str) or not currency:
        raise ValidationError({"currency": "Choose a currency."})
    currency = currency.lower()
    try:
        validate_currency(currency)
    except ValidationError:
        raise ValidationError({"currency": "Unknown currency."}) from None
    low, high = _amount(params, "min"), _amount(params, "max")
    if low is None and high is None:
        raise ValidationError({"min": "Give a minimum, a maximum, or both."})
    if low is not None and high is not None and low > high:
        raise ValidationError({"max": "The maximum is below the minimum."})
    return {"min": low, "max": high, "currency": currency}


def _compile_amount(params):
    low, high, currency = params["min"], params["max"], params["currency"]

    def holds(facts: Facts) -> bool:
        amount = facts.amount
        if amount is None:
            return False
        if low is not None:
            bound = facts.in_default_currency(low, currency)
            if bound is None or amount < bound:
                return False
        if high is not None:
            bound = facts.in_default_currency(high, currency)
            if bound is None or amount > bound:
                return False
        return True

    return holds


def _clean_interval(params):
    interval = params.get("interval")
    if interval not in INTERVALS:
        raise ValidationError({"interval": "Choose monthly or annual."})
    return {"interval": interval}


def _compile_interval(params):
    interval = params["interval"]
    return lambda facts: interval in facts.intervals


def _clean_products(params):
    products = params.get("products")
    if isinstance(products, str):
        products = [products]
    if not isinstance(products, list | tuple) or not products:
        raise ValidationError({"products": "Choose at least one product."})
    if any(not isinstance(p, str) or not p.startswith("prod_") for p in products):
        raise ValidationError({"products": "Products are given by their prod_ ids."})
    return {"products": sorted(set(products))}


def _compile_products(params):
    wanted = frozenset(params["products"])
    return lambda facts: not wanted.isdisjoint(facts.products)


REGISTRY: dict[str, ConditionType] = {
    spec.kind: spec
    for spec in (
        ConditionType(
            ConditionKind.CUSTOMER_METADATA,
            _clean_metadata,
            _compile_customer_metadata,
            lambda p: (("cm", p["key"], p["value"]),),
        ),
        ConditionType(
            ConditionKind.INVOICE_METADATA,
            _clean_metadata,
            _compile_invoice_metadata,
            lambda p: (("im", p["key"], p["value"]),),
        ),
        ConditionType(ConditionKind.INVOICE_AMOUNT, _clean_amount, _compile_amount),
        ConditionType(
            ConditionKind.SUBSCRIPTION_INTERVAL,
            _clean_interval,
            _compile_interval,
            lambda p: (("iv", p["interval"]),),
        ),
        ConditionType(
            ConditionKind.PRODUCTS,
            _clean_products,
            _compile_products,
            lambda p: tuple(("pr", product) for product in p["products"]),
        ),
    )
}


def get(kind) -> ConditionType:
    """The condition type of `kind`; an unknown kind is a programming or data error."""
    try:
        return REGISTRY[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown condition {kind!r}") from None


def clean(conditions, trigger: str) -> list[dict]:
    """Normalized conditions for `trigger`, or a ValidationError naming the field at fault
    (`filters.2.value`)."""
    if conditions in (None, ""):
        return []
    if not isinstance(conditions, list):
        raise ValidationError({"filters": "Filters are a list."})
    cleaned, errors = [], {}
    for position, condition in enumerate(conditions):
        prefix = f"filters.{position}"
        kind = condition.get("kind") if isinstance(condition, dict) else None
        try:
            spec = get(kind)
        except ValueError:
            errors[f"{prefix}.kind"] = [f"Unknown filter {kind!r}."]
            continue
        if trigger in Trigger.values and trigger not in TRIGGERS_FOR[spec.kind]:
            label = ConditionKind(spec.kind).label
            errors[f"{prefix}.kind"] = [
                f"{label} does not apply to the trigger “{Trigger(trigger).label}”."
            ]
            continue
        try:
            cleaned.append({"kind": spec.kind, **spec.clean(condition)})
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                errors[f"{prefix}.{name}"] = messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def compile_all(conditions: list[dict]) -> Callable[[Facts], bool]:
    """One predicate: every condition holds (no conditions: always)."""
    predicates = [get(c["kind"]).compile(c) for c in conditions]
    if not predicates:
        return lambda facts: True
    if len(predicates) == 1:
        return predicates[0]
    return lambda facts: all(predicate(facts) for predicate in predicates)


def evaluate(conditions: list[dict], facts: Facts) -> bool:
    """Whether every condition holds for `facts`."""
    return compile_all(conditions)(facts)


# Which index keys are the most selective: metadata pairs, then products, then intervals.
_KEY_PREFERENCE = {"cm": 0, "im": 1, "pr": 2, "iv": 3}


def _index_keys(conditions: list[dict]) -> tuple:
    """The keys to file an automation under: one required equality (any of its keys)."""
    best = ()
    for condition in conditions:
        keys = get(condition["kind"]).index_keys(condition)
        if keys and (not best or _KEY_PREFERENCE[keys[0][0]] < _KEY_PREFERENCE[best[0][0]]):
            best = keys
    return best


class Index:
    """The enabled automations of one trigger, compiled, for first-match lookups in priority
    order (SPEC R-AUTO-5). `entries` are (automation id, predicate) in priority order."""

    def __init__(self, automations: list[tuple[str, list[dict]]]):
        self.entries: list[tuple[str, Callable]] = []
        self.unkeyed: list[int] = []
        self.buckets: dict[tuple, list[int]] = {}
        for position, (automation_id, conditions) in enumerate(automations):
            self.entries.append((automation_id, compile_all(conditions)))
            keys = _index_keys(conditions)
            if not keys:
                self.unkeyed.append(position)
            for key in keys:
                self.buckets.setdefault(key, []).append(position)
        self.kinds = {key[0] for key in self.buckets}

    def __len__(self):
        return len(self.entries)

    def _candidates(self, facts: Facts):
        lists = [self.unkeyed] if self.unkeyed else []
        buckets = self.buckets
        if "cm" in self.kinds:
            lists += [
                buckets[k]
                for k in (("cm", *i) for i in facts.customer_metadata.items())
                if k in buckets
            ]
        if "im" in self.kinds:
            lists += [
                buckets[k]
                for k in (("im", *i) for i in facts.invoice_metadata.items())
                if k in buckets
            ]
        if "pr" in self.kinds:
            lists += [buckets[k] for k in (("pr", p) for p in facts.products) if k in buckets]
        if "iv" in self.kinds:
            lists += [buckets[k] for k in (("iv", i) for i in facts.intervals) if k in buckets]
        if len(lists) == 1:
            return lists[0]
        # Each list is in priority order; merge them, skipping an automation filed twice.
        return _unique(heapq.merge(*lists))

    def first_match(self, facts: Facts) -> tuple[str | None, int]:
        """(id of the first automation whose conditions hold, or None; how many were checked)."""
        checked = 0
        entries = self.entries
        for position in self._candidates(facts):
            checked += 1
            automation_id, holds = entries[position]
            if holds(facts):
                return automation_id, checked
        return None, checked


def _unique(positions):
    last = -1
    for position in positions:
        if position != last:
            yield position
            last = position
