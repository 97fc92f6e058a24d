"""Money as integers in the currency's minor unit (SPEC R-CORE-1): never floats.

Amounts are `int` everywhere in the engine. Display and currency conversion go through
`Decimal`, and anything that is not an `int` is refused so a float can never slip in.
"""

from decimal import ROUND_HALF_EVEN, Decimal

# Stripe's zero-decimal currencies: the amount is already in whole units.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
# Stripe's three-decimal currencies.
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "chf": "CHF "}


def exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def _require_int(amount) -> int:
    # bool is an int subclass but never a sensible amount.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"amounts are integers in minor units, got {type(amount).__name__}")
    return amount


def to_decimal(amount: int, currency: str) -> Decimal:
    """The amount in major units, exactly: 1999 usd → Decimal('19.99')."""
    return Decimal(_require_int(amount)).scaleb(-exponent(currency))


def from_decimal(value: Decimal | str, currency: str) -> int:
    """Major units to minor units, rounding half to even: Decimal('19.995') usd → 2000."""
    if isinstance(value, float):
        raise TypeError("amounts are never floats: pass a Decimal or a string")
    quantized = Decimal(value).scaleb(exponent(currency)).quantize(Decimal(1), ROUND_HALF_EVEN)
    return int(quantized)


def format_amount(amount: int, currency: str) -> str:
    """Human display: `format_amount(123456, "usd")` → `$1,234.56`; unknown → `1,234.56 SEK`."""
    value = to_decimal(amount, currency)
    places = exponent(currency)
    text = f"{abs(value):,.{places}f}"
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {currency.upper()}"


def convert(amount: int, from_currency: str, to_currency: str, rate: Decimal) -> int:
    """Convert minor units with `rate` = value of one major unit of `from` in `to`."""
    if isinstance(rate, float):
        raise TypeError("exchange rates are Decimals, never floats")
    if from_currency.lower() == to_currency.lower():
        return _require_int(amount)
    return from_decimal(to_decimal(amount, from_currency) * Decimal(rate), to_currency)


def percent_of(amount: int, percent: Decimal) -> int:
    """`percent` % of `amount` minor units, rounded half to even (discounts, platform fees)."""
    if isinstance(percent, float):
        raise TypeError("percentages are Decimals, never floats")
    value = Decimal(_require_int(amount)) * Decimal(percent) / Decimal(100)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
