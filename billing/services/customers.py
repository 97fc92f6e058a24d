"""Customer services: customers and their payment methods (cards).

Validation errors are keyed by Stripe's parameter names (`email`, `address`, `card[number]`,
`invoice_settings[default_payment_method]`…) so the API can render them as Stripe does, and every
verb runs in one transaction: on error nothing is written and the caller's objects are unchanged.
"""

from collections.abc import Callable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from billing import events
from billing.choices import BalanceTransactionType, SubscriptionStatus, TestClockStatus
from billing.clocks import now_for
from billing.gateway import card_details, token_card_details
from billing.models import (
    Account,
    Customer,
    CustomerBalanceTransaction,
    Invoice,
    PaymentMethod,
    Subscription,
    TestClock,
)
from billing.models.accounts import account_invoice_prefix
from billing.models.customers import INVOICE_PREFIX, new_invoice_prefix
from billing.serializers import serialize
from billing.services.accounts import changed_attributes, validate_timezone
from billing.validators import validate_metadata

# What `update_customer` may change. Anything else (account, livemode, test_clock…) is not the
# caller's to set through this verb, and is refused loudly. `balance` is set through it too,
# but as a balance adjustment (see `_set_balance`).
CUSTOMER_UPDATE_FIELDS = frozenset(
    {
        "email",
        "name",
        "phone",
        "description",
        "address",
        "timezone",
        "metadata",
        "preferred_locales",
        "invoice_settings_default_payment_method",
        "default_source",
        "balance",
        "invoice_prefix",
        "next_invoice_sequence",
    }
)

# Stripe's ceiling for an invoice sequence.
MAX_INVOICE_SEQUENCE = 1_000_000_000

# Stripe's amounts are 64-bit; a balance beyond this is never a real one.
MAX_BALANCE = 10**12

# Stripe's address object, in the order Stripe documents it.
ADDRESS_KEYS = ("line1", "line2", "city", "state", "postal_code", "country")
BILLING_DETAILS_KEYS = ("address", "email", "name", "phone")
CARD_KEYS = ("number", "exp_month", "exp_year", "cvc")
REQUIRED_CARD_KEYS = ("number", "exp_month", "exp_year")

# Subscriptions that have already ended; deleting their customer leaves them as they are.
ENDED_STATUSES = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)

DEFAULT_PAYMENT_METHOD_PARAM = "invoice_settings[default_payment_method]"


# ---------------------------------------------------------------------------------------------
# Small helpers.
# ---------------------------------------------------------------------------------------------


def _invalid(param: str, message: str, code: str | None = None) -> ValidationError:
    """A ValidationError naming one Stripe parameter."""
    return ValidationError({param: ValidationError(message, code=code)})


def _no_such_customer(customer: Customer) -> ValidationError:
    return _invalid("customer", f"No such customer: '{customer.pk}'", "resource_missing")


def _no_such_payment_method(pk: str) -> ValidationError:
    return _invalid("payment_method", f"No such PaymentMethod: '{pk}'", "resource_missing")


class _Errors:
    """Collects every invalid parameter, so one call reports them all at once."""

    def __init__(self):
        self.by_param: dict[str, list[ValidationError]] = {}

    def clean(self, param: str, cleaner: Callable, value):
        """`cleaner(value)`, or None after recording its ValidationError under `param`."""
        try:
            return cleaner(value)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                # A cleaner that already names nested parameters (`address[city]`…).
                for key, errors in error.error_dict.items():
                    self.by_param.setdefault(key, []).extend(errors)
            else:
                self.by_param.setdefault(param, []).extend(error.error_list)
            return None

    def add(self, param: str, message: str, code: str | None = None) -> None:
        self.by_param.setdefault(param, []).append(ValidationError(message, code=code))

    def raise_any(self) -> None:
        if self.by_param:
            raise ValidationError(self.by_param)


def _string(max_length: int | None = None) -> Callable[[str | None], str]:
    """A cleaner for a plain text field: None clears it, surrounding spaces are dropped."""

    def clean(value) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValidationError("Invalid string.", code="invalid_string")
        value = value.strip()
        if max_length is not None and len(value) > max_length:
            raise ValidationError(
                f"Must be at most {max_length} characters.", code="string_too_long"
            )
        return value

    return clean


def _clean_email(value) -> str:
    value = _string(max_length=Customer._meta.get_field("email").max_length)(value)
    if value:
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationError(f"Invalid email address: {value}", code="email_invalid") from None
    return value


def _clean_address(value, *, param: str = "address") -> dict | None:
    """Stripe's address object with all six keys (unset ones null), or None for no address."""
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise ValidationError("Invalid address object.", code="invalid_address")
    errors = _Errors()
    for key in value:
        if key not in ADDRESS_KEYS:
            errors.by_param.setdefault(f"{param}[{key}]", []).append(
                ValidationError(
                    f"Received unknown parameter: {param}[{key}]", code="parameter_unknown"
                )
            )
    address = {}
    for key in ADDRESS_KEYS:
        cleaned = errors.clean(f"{param}[{key}]", _string(max_length=200), value.get(key))
        address[key] = cleaned or None
    errors.raise_any()
    return address if any(address.values()) else None


def _clean_timezone(value) -> str:
    value = _string()(value)
    if value:
        validate_timezone(value)
    return value


def _clean_locales(value) -> list[str]:
    if value is None:
        return []
    if not (isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)):
        raise ValidationError("Must be a list of locale strings.", code="invalid_locales")
    return list(value)


def _clean_metadata(value) -> dict:
    """New metadata: empty values are simply not set."""
    if value is None:
        return {}
    validate_metadata(value)
    return {key: item for key, item in value.items() if item != ""}


def _merged_metadata(current: dict, update) -> dict:
    """Stripe's metadata update: keys are merged, a key set to "" is removed, "" clears all."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        validate_metadata(update)  # raises: not a map
    # Check the update's own keys and values before merging, so a bad value is named even when
    # it would be dropped; None is accepted as "remove" for Python callers.
    validate_metadata({key: item for key, item in update.items() if item is not None})
    merged = dict(current)
    for key, item in update.items():
        if item in ("", None):
            merged.pop(key, None)
        else:
            merged[key] = item
    validate_metadata(merged)  # the 50-key limit holds for the result
    return merged


def _clean_invoice_prefix(value) -> str:
    if not isinstance(value, str) or not INVOICE_PREFIX.fullmatch(value):
        raise ValidationError(
            "Must be 3 to 12 capital letters or digits (A-Z, 0-9).", code="invalid_invoice_prefix"
        )
    return value


def _clean_invoice_sequence(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("Must be a whole number.", code="invalid")
    if not 1 <= value <= MAX_INVOICE_SEQUENCE:
        raise ValidationError(f"Must be between 1 and {MAX_INVOICE_SEQUENCE}.", code="invalid")
    return value


def _check_numbering(account_id: str, customer_id, prefix: str, sequence: int, errors) -> None:
    """That invoices numbered `prefix`-`sequence` onwards can never take a number already given:
    the prefix is not the account's own, nor another customer's (now or on an invoice), and
    `sequence` is past every number this customer's invoices took with it."""
    if prefix == account_invoice_prefix(account_id):
        errors.add(
            "invoice_prefix", "This prefix numbers the account's own invoices.", "prefix_taken"
        )
        return
    if (
        Customer.objects.filter(account_id=account_id, invoice_prefix=prefix)
        .exclude(pk=customer_id)
        .exists()
    ):
        errors.add("invoice_prefix", "Another customer has this prefix.", "prefix_taken")
        return
    last = 0
    for owner, number in Invoice.objects.filter(
        account_id=account_id, number__startswith=f"{prefix}-"
    ).values_list("customer_id", "number"):
        suffix = number[len(prefix) + 1 :]
        if not suffix.isdigit():
            continue
        if owner != customer_id:
            errors.add(
                "invoice_prefix",
                f"Another customer's invoices were numbered with this prefix ({number}).",
                "prefix_taken",
            )
            return
        last = max(last, int(suffix))
    if sequence <= last:
        errors.add(
            "next_invoice_sequence",
            f"Must be greater than {last}: invoice {prefix}-{last:04d} has that number.",
            "invoice_sequence_used",
        )


def _save_numbered(customer: Customer, **options) -> None:
    """Save `customer`; a prefix another request gave its customer since `_check_numbering`
    looked (the unique constraint says so) is the same error as one taken before."""
    try:
        with transaction.atomic():
            customer.save(**options)
    except IntegrityError as error:
        if "invoice_prefix" not in str(error):
            raise
        raise _invalid(
            "invoice_prefix", "Another customer has this prefix.", "prefix_taken"
        ) from None


def _free_invoice_prefix(account_id: str) -> str:
    """A random prefix no customer of the account has (a clash is rare, but would give two
    customers the same invoice numbers)."""
    while True:
        prefix = new_invoice_prefix()
        if prefix != account_invoice_prefix(account_id) and not (
            Customer.objects.filter(account_id=account_id, invoice_prefix=prefix).exists()
        ):
            return prefix


# Cleaners of the customer fields both create and update accept.
CUSTOMER_CLEANERS: dict[str, Callable] = {
    "email": _clean_email,
    "name": _string(max_length=Customer._meta.get_field("name").max_length),
    "phone": _string(max_length=Customer._meta.get_field("phone").max_length),
    "description": _string(),
    "address": _clean_address,
    "timezone": _clean_timezone,
    "preferred_locales": _clean_locales,
    "default_source": _string(max_length=Customer._meta.get_field("default_source").max_length),
    "invoice_prefix": _clean_invoice_prefix,
    "next_invoice_sequence": _clean_invoice_sequence,
}


def _copy_state(source, target) -> None:
    """Give the caller's instance the saved state of the locked copy the service worked on."""
    if target is source:
        return
    for field in type(source)._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def _lock_customer(customer: Customer) -> Customer:
    """A fresh, locked copy of `customer`; a deleted customer cannot change."""
    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    if locked.deleted_at is not None:
        raise _no_such_customer(locked)
    return locked


# ---------------------------------------------------------------------------------------------
# Customers.
# ---------------------------------------------------------------------------------------------


def _clock_for_new_customer(account: Account, livemode: bool, test_clock) -> TestClock:
    """The locked test clock a new customer joins, after Stripe's checks (SPEC R-CLOCK-1)."""
    pk = test_clock.pk if isinstance(test_clock, TestClock) else test_clock
    # Locked, so that an advance cannot start between the check and the customer's creation.
    clock = TestClock.objects.select_for_update().filter(pk=pk, account=account).first()
    if clock is None:
        raise ValidationError(f"No such test clock: '{pk}'", code="resource_missing")
    if livemode or clock.livemode:
        raise ValidationError(
            "Test clocks can only be used in test mode.", code="livemode_mismatch"
        )
    if clock.status == TestClockStatus.ADVANCING:
        # Stripe refuses changes to a clock's objects while it advances.
        raise ValidationError(
            "The test clock is advancing; try again once it is ready.",
            code="test_clock_advancing",
        )
    if clock.status != TestClockStatus.READY:
        raise ValidationError(
            f"The test clock is in status {clock.status} and cannot take new customers.",
            code="test_clock_unusable",
        )
    return clock


@transaction.atomic
def create_customer(
    account: Account,
    *,
    livemode: bool,
    email: str = "",
    name: str = "",
    phone: str = "",
    description: str = "",
    address: dict | None = None,
    timezone: str = "",
    metadata: dict | None = None,
    test_clock: TestClock | str | None = None,
    preferred_locales: list[str] | None = None,
    balance: int = 0,
    invoice_prefix: str | None = None,
    next_invoice_sequence: int = 1,
    request_id: str | None = None,
) -> Customer:
    """A new customer; emits `customer.created` at the time of its clock (SPEC R-CORE-4).

    A non-zero `balance` (negative: credit, positive: owed) is recorded as Stripe records it,
    by a balance transaction of type `initial`, in the account's default currency. Without an
    `invoice_prefix` the customer gets a random one of its own."""
    livemode = bool(livemode)
    errors = _Errors()
    raw = {
        "email": email,
        "name": name,
        "phone": phone,
        "description": description,
        "address": address,
        "timezone": timezone,
        "preferred_locales": preferred_locales,
    }
    values = {field: errors.clean(field, CUSTOMER_CLEANERS[field], raw[field]) for field in raw}
    values["metadata"] = errors.clean("metadata", _clean_metadata, metadata)
    clock = None
    if test_clock is not None:
        clock = errors.clean(
            "test_clock",
            lambda value: _clock_for_new_customer(account, livemode, value),
            test_clock,
        )
    balance = errors.clean("balance", _clean_balance, balance)
    sequence = errors.clean("next_invoice_sequence", _clean_invoice_sequence, next_invoice_sequence)
    if invoice_prefix is not None:
        prefix = errors.clean("invoice_prefix", _clean_invoice_prefix, invoice_prefix)
        if prefix and sequence:
            _check_numbering(account.pk, None, prefix, sequence, errors)
    errors.raise_any()
    if invoice_prefix is None:
        prefix = _free_invoice_prefix(account.pk)

    customer = Customer(
        account=account,
        livemode=livemode,
        test_clock=clock,
        invoice_prefix=prefix,
        next_invoice_sequence=sequence,
        **values,
    )
    customer.created = now_for(customer)
    if balance:
        customer.balance = balance
        customer.currency = account.default_currency
    _save_numbered(customer, force_insert=True)
    if balance:
        _record_balance_change(
            customer, balance, type=BalanceTransactionType.INITIAL, currency=customer.currency
        )
    events.emit("customer.created", customer, request_id=request_id)
    return customer


def _clean_balance(value) -> int:
    """A balance in minor units (SPEC R-CORE-1): a whole number, never a float."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("The balance is a whole number of minor units.", code="invalid")
    if abs(value) > MAX_BALANCE:
        raise ValidationError(f"The balance must be within ±{MAX_BALANCE}.", code="invalid")
    return value


def _record_balance_change(
    customer: Customer, amount: int, *, type: str, currency: str, description="", metadata=None
) -> CustomerBalanceTransaction:
    """The balance transaction recording a change of `amount` that `customer.balance` (already
    changed) ends at."""
    return CustomerBalanceTransaction.objects.create(
        account_id=customer.account_id,
        livemode=customer.livemode,
        customer=customer,
        amount=amount,
        currency=currency,
        type=type,
        description=description,
        ending_balance=customer.balance,
        metadata=metadata or {},
        created=now_for(customer),
    )


def _attached_payment_method(customer: Customer, value) -> PaymentMethod | None:
    """The payment method `value` names (instance or id) if it is attached to `customer`."""
    if value in (None, ""):
        return None
    pk = value.pk if isinstance(value, PaymentMethod) else value
    payment_method = PaymentMethod.objects.filter(pk=pk, customer=customer).first()
    if payment_method is None:
        raise ValidationError(
            f"The customer does not have a payment method with the ID {pk}. "
            "The payment method must be attached to the customer.",
            code="resource_missing",
        )
    return payment_method


@transaction.atomic
def update_customer(customer: Customer, *, request_id: str | None = None, **fields) -> Customer:
    """Change some of a customer's fields, all or nothing.

    `metadata` merges as in Stripe (a key set to "" is removed; "" clears it all). Emits
    `customer.updated` with `previous_attributes` when anything Stripe shows changed.
    """
    unknown = set(fields) - CUSTOMER_UPDATE_FIELDS
    if unknown:
        raise ValueError(f"not customer fields: {', '.join(sorted(unknown))}")
    locked = _lock_customer(customer)

    errors = _Errors()
    values = {}
    for field, value in fields.items():
        if field == "metadata":
            values[field] = errors.clean(
                field, lambda update: _merged_metadata(locked.metadata, update), value
            )
        elif field == "balance":
            values[field] = errors.clean(field, _clean_balance, value)
        elif field == "invoice_settings_default_payment_method":
            values[field] = errors.clean(
                DEFAULT_PAYMENT_METHOD_PARAM,
                lambda pm: _attached_payment_method(locked, pm),
                value,
            )
        else:
            values[field] = errors.clean(field, CUSTOMER_CLEANERS[field], value)
    errors.raise_any()
    prefix = values.get("invoice_prefix", locked.invoice_prefix)
    sequence = values.get("next_invoice_sequence", locked.next_invoice_sequence)
    if (prefix, sequence) != (locked.invoice_prefix, locked.next_invoice_sequence):
        _check_numbering(locked.account_id, locked.pk, prefix, sequence, errors)
        errors.raise_any()

    before = serialize(locked)
    changed = []
    old_balance = locked.balance
    for field, value in values.items():
        attname = Customer._meta.get_field(field).attname
        old = getattr(locked, attname)
        setattr(locked, field, value)
        if getattr(locked, attname) != old:
            changed.append(field)
    if "balance" in changed and not locked.currency:
        # The balance is in the customer's currency; Stripe fixes it with the first change.
        locked.currency = locked.account.default_currency
        changed.append("currency")
    if changed:
        _save_numbered(locked, update_fields=sorted(changed))
        if "balance" in changed:
            # Stripe records every change of the balance made through the customer as an
            # `adjustment` balance transaction.
            _record_balance_change(
                locked,
                locked.balance - old_balance,
                type=BalanceTransactionType.ADJUSTMENT,
                currency=locked.currency,
            )
        previous = changed_attributes(before, serialize(locked))
        if previous:
            events.emit(
                "customer.updated", locked, previous_attributes=previous, request_id=request_id
            )
    _copy_state(locked, customer)
    return customer


@transaction.atomic
def set_default_payment_method(
    customer: Customer, *, payment_method: PaymentMethod | None, request_id: str | None = None
) -> Customer:
    """Make `payment_method` (attached to `customer`) the one its invoices charge (R-TRIAL-7)."""
    return update_customer(
        customer, invoice_settings_default_payment_method=payment_method, request_id=request_id
    )


@transaction.atomic
def delete_customer(customer: Customer, *, request_id: str | None = None) -> Customer:
    """Delete a customer as Stripe does: its subscriptions end now, its cards are detached.

    `customer.deleted` carries the full customer as it was; afterwards the customer renders as
    Stripe's deletion stub and can no longer change.
    """
    # Imported here: the subscription services import this module's neighbours.
    from billing.services.subscriptions import cancel_subscription

    locked = _lock_customer(customer)
    now = now_for(locked)

    running = Subscription.objects.filter(customer=locked).exclude(status__in=ENDED_STATUSES)
    for subscription in running.order_by("created", "id"):
        cancel_subscription(subscription, request_id=request_id)

    cards = PaymentMethod.objects.select_for_update().filter(customer=locked)
    for payment_method in cards.order_by("created", "id"):
        _detach(payment_method, locked, at=now, request_id=request_id)

    # Serialized before deleted_at is set: a deleted customer renders as the short stub.
    events.emit("customer.deleted", locked, request_id=request_id, created=now)
    locked.deleted_at = now
    # Its cards are detached; a default pointing at one of them would mean nothing.
    locked.invoice_settings_default_payment_method = None
    locked.save(update_fields=["deleted_at", "invoice_settings_default_payment_method"])
    _copy_state(locked, customer)
    return customer


# ---------------------------------------------------------------------------------------------
# Customer balance transactions.
# ---------------------------------------------------------------------------------------------


@transaction.atomic
def create_balance_transaction(
    customer: Customer,
    *,
    amount: int,
    currency: str,
    description: str = "",
    metadata: dict | None = None,
    request_id: str | None = None,
) -> CustomerBalanceTransaction:
    """Credit (negative `amount`) or debit (positive) the customer's balance, applied to their
    next invoices at finalization; a transaction of type `adjustment`, and `customer.updated`.

    `currency` must be the customer's; a customer without one takes it (as in Stripe)."""
    locked = _lock_customer(customer)
    errors = _Errors()
    amount = errors.clean("amount", _clean_balance, amount)
    if amount == 0 and "amount" not in errors.by_param:
        errors.by_param["amount"] = [ValidationError("The amount cannot be zero.")]
    currency = (currency or "").lower() if isinstance(currency, str) else currency
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        errors.by_param["currency"] = [ValidationError("Invalid currency.", code="invalid")]
    elif locked.currency and locked.currency != currency:
        errors.by_param["currency"] = [
            ValidationError(
                f"The customer's balance is in {locked.currency}; this transaction is in "
                f"{currency}.",
                code="invalid",
            )
        ]
    description = errors.clean("description", _string(max_length=350), description)
    metadata = errors.clean("metadata", _clean_metadata, metadata)
    if amount and abs(locked.balance + amount) > MAX_BALANCE:
        errors.by_param["amount"] = [ValidationError("The balance would be too large.")]
    errors.raise_any()

    before = serialize(locked)
    locked.balance += amount
    fields = ["balance"]
    if not locked.currency:
        locked.currency = currency
        fields.append("currency")
    locked.save(update_fields=fields)
    transaction_ = _record_balance_change(
        locked,
        amount,
        type=BalanceTransactionType.ADJUSTMENT,
        currency=currency,
        description=description,
        metadata=metadata,
    )
    previous = changed_attributes(before, serialize(locked))
    events.emit("customer.updated", locked, previous_attributes=previous, request_id=request_id)
    _copy_state(locked, customer)
    return transaction_


@transaction.atomic
def update_balance_transaction(
    transaction_: CustomerBalanceTransaction,
    *,
    description: str | None = None,
    metadata: dict | str | None = None,
) -> CustomerBalanceTransaction:
    """Change a balance transaction's description or metadata (its amount is history)."""
    locked = CustomerBalanceTransaction.objects.select_for_update().get(pk=transaction_.pk)
    errors = _Errors()
    if description is not None:
        locked.description = errors.clean("description", _string(max_length=350), description)
    if metadata is not None:
        locked.metadata = errors.clean(
            "metadata", lambda update: _merged_metadata(locked.metadata, update), metadata
        )
    errors.raise_any()
    locked.save(update_fields=["description", "metadata"])
    return locked


# ---------------------------------------------------------------------------------------------
# Payment methods.
# ---------------------------------------------------------------------------------------------


def _clean_billing_details(value) -> dict:
    """Stripe's billing_details: address, email, name, phone (only those given are kept)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("Invalid billing_details object.", code="invalid_billing_details")
    errors = _Errors()
    details = {}
    for key, item in value.items():
        param = f"billing_details[{key}]"
        if key == "address":
            details[key] = errors.clean(
                param, lambda v: _clean_address(v, param="billing_details[address]"), item
            )
        elif key == "email":
            details[key] = errors.clean(param, _clean_email, item) or None
        elif key in BILLING_DETAILS_KEYS:
            details[key] = errors.clean(param, _string(max_length=256), item) or None
        else:
            errors.by_param.setdefault(param, []).append(
                ValidationError(f"Received unknown parameter: {param}", code="parameter_unknown")
            )
    errors.raise_any()
    return details


def _card_fields(card: dict | None, token: str | None, *, today) -> dict:
    """The PaymentMethod card fields from exactly one of a card dict or a `pm_card_*` token."""
    if (card is None) == (token is None):
        message = (
            "Missing required param: card."
            if card is None
            else "Pass either card details or a test token, not both."
        )
        raise _invalid("card", message, "parameter_missing" if card is None else "invalid")
    if token is not None:
        return token_card_details(token, today=today)
    if not isinstance(card, dict):
        raise _invalid("card", "Invalid card object.", "invalid_card")
    errors = _Errors()
    for key in card:
        if key not in CARD_KEYS:
            errors.by_param[f"card[{key}]"] = [
                ValidationError(f"Received unknown parameter: card[{key}]", "parameter_unknown")
            ]
    for key in REQUIRED_CARD_KEYS:
        if card.get(key) in (None, ""):
            errors.by_param[f"card[{key}]"] = [
                ValidationError(f"Missing required param: card[{key}].", "parameter_missing")
            ]
    errors.raise_any()
    return card_details(
        str(card["number"]),
        exp_month=card["exp_month"],
        exp_year=card["exp_year"],
        cvc=card.get("cvc") or None,
        today=today,
    )


def _new_payment_method(
    account: Account,
    *,
    livemode: bool,
    card: dict | None,
    token: str | None,
    billing_details: dict | None,
    metadata: dict | None,
    now: datetime | None,
) -> PaymentMethod:
    """A saved, unattached card; `now` is the clock of the customer it is for, if any."""
    payment_method = PaymentMethod(account=account, livemode=bool(livemode))
    now = now if now is not None else now_for(payment_method)
    errors = _Errors()
    fields = errors.clean("card", lambda _: _card_fields(card, token, today=now.date()), None)
    details = errors.clean("billing_details", _clean_billing_details, billing_details)
    clean_metadata = errors.clean("metadata", _clean_metadata, metadata)
    errors.raise_any()

    for name, value in fields.items():
        setattr(payment_method, name, value)
    payment_method.billing_details = details
    payment_method.metadata = clean_metadata
    payment_method.created = now
    payment_method.save(force_insert=True)
    return payment_method


@transaction.atomic
def create_payment_method(
    account: Account,
    *,
    livemode: bool,
    card: dict | None = None,
    token: str | None = None,
    billing_details: dict | None = None,
    metadata: dict | None = None,
) -> PaymentMethod:
    """A new, unattached card from its details or a `pm_card_*` token (SPEC R-INV-10).

    Stripe sends no event for a payment method's creation, and neither does this.
    """
    return _new_payment_method(
        account,
        livemode=livemode,
        card=card,
        token=token,
        billing_details=billing_details,
        metadata=metadata,
        now=None,
    )


@transaction.atomic
def attach_payment_method(
    payment_method: PaymentMethod,
    *,
    customer: Customer,
    set_default: bool = False,
    request_id: str | None = None,
) -> PaymentMethod:
    """Attach a card to a customer (`payment_method.attached`); with `set_default`, make it the
    default for invoices too (`customer.updated`). Attaching it again to the same customer is a
    no-op."""
    # Customer first, then the card: the same order as every verb here, so no deadlock.
    locked_customer = _lock_customer(customer)
    locked = PaymentMethod.objects.select_for_update().filter(pk=payment_method.pk).first()
    if (
        locked is None
        or locked.account_id != locked_customer.account_id
        or locked.livemode != locked_customer.livemode
    ):
        # Another account's (or mode's) card does not exist as far as this customer can tell.
        raise _no_such_payment_method(payment_method.pk)
    if locked.customer_id not in (None, locked_customer.id):
        raise _invalid(
            "payment_method",
            "The payment method you provided has already been attached to a customer.",
            "payment_method_unexpected_state",
        )

    if locked.customer_id is None:
        locked.customer = locked_customer
        locked.save(update_fields=["customer"])
        events.emit("payment_method.attached", locked, request_id=request_id)
    if set_default:
        update_customer(
            locked_customer,
            invoice_settings_default_payment_method=locked,
            request_id=request_id,
        )
        _copy_state(locked_customer, customer)
    _copy_state(locked, payment_method)
    return payment_method


@transaction.atomic
def add_card(
    customer: Customer,
    *,
    card: dict | None = None,
    token: str | None = None,
    billing_details: dict | None = None,
    set_default: bool = False,
    request_id: str | None = None,
) -> PaymentMethod:
    """Create a card and attach it to `customer` in one go (dashboard and hosted pages)."""
    # Checked before creating anything: a deleted customer gets no card at all.
    locked = _lock_customer(customer)
    payment_method = _new_payment_method(
        customer.account,
        livemode=customer.livemode,
        card=card,
        token=token,
        billing_details=billing_details,
        metadata=None,
        # A test-clock customer's card is created, and its expiry judged, on the clock's time.
        now=now_for(locked),
    )
    return attach_payment_method(
        payment_method, customer=customer, set_default=set_default, request_id=request_id
    )


def _detach(
    payment_method: PaymentMethod, customer: Customer, *, at: datetime, request_id: str | None
) -> None:
    """Detach a locked card from its locked customer and say so (`payment_method.detached`)."""
    payment_method.customer = None
    payment_method.save(update_fields=["customer"])
    # Subscriptions cannot charge a card their customer no longer has. The subscription services
    # own subscription events; this only drops the dangling reference, without an event.
    Subscription.objects.filter(default_payment_method=payment_method).update(
        default_payment_method=None
    )
    event = events.emit(
        "payment_method.detached",
        payment_method,
        previous_attributes={"customer": customer.id},
        request_id=request_id,
        # A detached card has no clock of its own any more: the event is on its customer's time.
        created=at,
    )
    # Likewise `emit` finds no customer on the detached card; the event is still about one.
    event.customer_id = customer.id
    event.save(update_fields=["customer_id"])


@transaction.atomic
def detach_payment_method(
    payment_method: PaymentMethod, *, request_id: str | None = None
) -> PaymentMethod:
    """Detach a card from its customer (`payment_method.detached`); if it was the customer's
    default for invoices, the customer has none any more (`customer.updated`)."""
    customer_id = (
        PaymentMethod.objects.filter(pk=payment_method.pk)
        .values_list("customer_id", flat=True)
        .first()
    )
    if customer_id is None:
        raise _invalid(
            "payment_method",
            "The payment method you provided is not attached to a customer "
            "so detachment is impossible.",
            "payment_method_unexpected_state",
        )
    # Customer first, then the card, as everywhere here.
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    locked = PaymentMethod.objects.select_for_update().get(pk=payment_method.pk)
    if locked.customer_id != customer.id:
        # Moved between our two reads; the caller retries against the new state.
        raise _invalid(
            "payment_method",
            "The payment method changed while it was being detached; try again.",
            "lock_timeout",
        )

    _detach(locked, customer, at=now_for(customer), request_id=request_id)
    if customer.invoice_settings_default_payment_method_id == locked.id:
        update_customer(
            customer, invoice_settings_default_payment_method=None, request_id=request_id
        )
    _copy_state(locked, payment_method)
    return payment_method
