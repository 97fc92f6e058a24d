"""Stripe's form encoding: bracket notation decoded to nested values, then checked by schemas.

`decode` turns `items[0][price]=p&metadata[plan]=pro&expand[]=customer` into
`{"items": {"0": {"price": "p"}}, "metadata": {"plan": "pro"}, "expand": ["customer"]}`:
indexed keys stay dict keys, because only the schema knows whether `x[0]` is the first item of
an array or a map key "0" (`metadata[0]`). A `Schema` then checks every parameter the endpoint
takes, converts types, and names the offending parameter in Stripe's spelling on any error.
"""

import datetime
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from django.conf import settings

from billing.api.errors import ApiError, invalid, missing, unknown

# A name then zero or more bracketed segments: `a`, `a[b]`, `a[0][c]`, `a[]`.
KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")
MAX_DEPTH = 8
# Stripe's integers are 64-bit; more digits than that is never a valid amount or count.
MAX_INTEGER_DIGITS = 19


def parse_pairs(query: str) -> list[tuple[str, str]]:
    """The `key=value` pairs of a query string or form body, blanks kept ("" unsets)."""
    try:
        return parse_qsl(
            query,
            keep_blank_values=True,
            max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
        )
    except ValueError:
        raise invalid(None, "Too many parameters.") from None


def _segments(key: str) -> list[str]:
    match = KEY_RE.match(key)
    if match is None:
        raise invalid(key, f"Invalid parameter name: {key}")
    segments = [match.group(1), *SEGMENT_RE.findall(match.group(2))]
    if len(segments) > MAX_DEPTH:
        raise invalid(key, f"Parameter {key} is nested too deeply.")
    if "" in segments[:-1]:
        # `a[][b]` has no unambiguous meaning; Stripe's SDKs always send indexes.
        raise invalid(key, f"Invalid parameter name: {key} (use indexes, as in a[0][b]).")
    return segments


def _name(segments: list[str]) -> str:
    """Segments back in bracket notation: `["items", "0", "price"]` → `items[0][price]`."""
    return segments[0] + "".join(f"[{segment}]" for segment in segments[1:])


def decode(pairs: list[tuple[str, str]]) -> dict:
    """Nested dicts (and lists, for `[]`) from bracketed keys. A scalar given twice keeps the
    last value; a key used both as a value and as a hash or array is refused."""
    root: dict = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            # PostgreSQL text cannot hold NUL, and no Stripe parameter needs it.
            raise invalid(key.replace("\x00", ""), "Invalid string: parameters cannot contain NUL.")
        segments = _segments(key)
        append = segments[-1] == ""
        if append:
            segments = segments[:-1]
        node = root
        for depth, segment in enumerate(segments[:-1]):
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                name = _name(segments[: depth + 1])
                raise invalid(name, f"Invalid hash: {name} is given both a value and keys.")
            node = child
        last = segments[-1]
        name = _name(segments)
        if append:
            current = node.setdefault(last, [])
            if not isinstance(current, list):
                raise invalid(name, f"Invalid array: {name} mixes [] with a value or indexes.")
            current.append(value)
        elif isinstance(node.get(last), dict | list):
            raise invalid(name, f"Invalid hash: {name} is given both a value and keys.")
        else:
            node[last] = value
    return root


# ---------------------------------------------------------------------------------------------
# Schemas: what an endpoint accepts.
# ---------------------------------------------------------------------------------------------


class Field:
    """One parameter's type; `clean` returns the Python value or raises ApiError on `param`."""

    def __init__(self, *, required: bool = False):
        self.required = required

    def clean(self, value, param: str):
        raise NotImplementedError


def _describe(value) -> str:
    return "a hash" if isinstance(value, dict) else "an array" if isinstance(value, list) else ""


class String(Field):
    """Text up to `max_length` characters; "" is kept (the endpoint decides that it unsets)."""

    def __init__(self, *, max_length: int = 5000, **options):
        super().__init__(**options)
        self.max_length = max_length

    def clean(self, value, param):
        if not isinstance(value, str):
            raise invalid(
                param, f"Invalid string: {param} must be a string, not {_describe(value)}."
            )
        if len(value) > self.max_length:
            raise invalid(
                param,
                f"Invalid string: {param} must be at most {self.max_length} characters.",
                "parameter_invalid_string_too_long",
            )
        return value


class Integer(Field):
    """A whole number within bounds; "" is None (unset)."""

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **options):
        super().__init__(**options)
        self.min_value = min_value
        self.max_value = max_value

    def clean(self, value, param):
        if value == "":
            return None
        if not isinstance(value, str):
            raise invalid(
                param, f"Invalid integer: {param} must be an integer.", "parameter_invalid_integer"
            )
        text = value.strip()
        digits = text[1:] if text[:1] in "-+" else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_INTEGER_DIGITS:
            raise invalid(param, f"Invalid integer: {value[:40]}", "parameter_invalid_integer")
        number = int(text)
        if self.min_value is not None and number < self.min_value:
            raise invalid(
                param,
                f"This value must be greater than or equal to {self.min_value}.",
                "parameter_invalid_integer",
            )
        if self.max_value is not None and number > self.max_value:
            raise invalid(
                param,
                f"This value must be less than or equal to {self.max_value}.",
                "parameter_invalid_integer",
            )
        return number


class Boolean(Field):
    """`true` or `false`, as the SDKs send booleans."""

    def clean(self, value, param):
        if value == "true":
            return True
        if value == "false":
            return False
        shown = value[:40] if isinstance(value, str) else _describe(value)
        raise invalid(param, f"Invalid boolean: {shown}")


class Enum(Field):
    """One of a few strings."""

    def __init__(self, *choices: str, **options):
        super().__init__(**options)
        self.choices = choices

    def clean(self, value, param):
        if value not in self.choices:
            listed = ", ".join(self.choices[:-1]) + f", or {self.choices[-1]}"
            raise invalid(param, f"Invalid {param}: must be one of {listed}")
        return value


class DecimalNumber(Field):
    """A decimal number (`percent_off`) with at most `places` decimals; "" is None."""

    def __init__(self, *, places: int = 2, min_value=None, max_value=None, **options):
        super().__init__(**options)
        self.places = places
        self.min_value = min_value
        self.max_value = max_value

    def clean(self, value, param):
        if value == "":
            return None
        try:
            if not isinstance(value, str) or len(value) > 40:
                raise InvalidOperation
            number = Decimal(value.strip())
        except InvalidOperation:
            raise invalid(param, f"Invalid decimal: {str(value)[:40]}") from None
        if not number.is_finite() or -number.as_tuple().exponent > self.places:
            raise invalid(param, f"Invalid decimal: {value} (at most {self.places} decimals).")
        if (self.min_value is not None and number < self.min_value) or (
            self.max_value is not None and number > self.max_value
        ):
            raise invalid(param, f"{param} must be between {self.min_value} and {self.max_value}.")
        return number


class Timestamp(Integer):
    """Unix seconds as an aware datetime; `now` too when `allow_now` (as `trial_end=now`)."""

    def __init__(self, *, allow_now: bool = False, **options):
        super().__init__(min_value=0, max_value=253402300799, **options)  # up to year 9999
        self.allow_now = allow_now

    def clean(self, value, param):
        if self.allow_now and value == "now":
            return "now"
        seconds = super().clean(value, param)
        if seconds is None:
            return None
        return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


class Metadata(Field):
    """A string→string map; "" (clear all) is kept for the endpoint to pass on."""

    def clean(self, value, param):
        if value == "":
            return ""
        if not isinstance(value, dict):
            raise invalid(param, "Invalid hash: metadata must be a hash of keys to strings.")
        for key, item in value.items():
            if not isinstance(item, str):
                raise invalid(
                    f"{param}[{key}]", f"Invalid string: {param}[{key}] must be a string."
                )
        return dict(value)


class Hash(Field):
    """A nested object with known keys; "" is kept (unset) unless `blank=False`."""

    def __init__(self, fields: dict[str, Field], *, blank: bool = True, **options):
        super().__init__(**options)
        self.fields = fields
        self.blank = blank

    def clean(self, value, param):
        if value == "" and self.blank:
            return ""
        if not isinstance(value, dict):
            raise invalid(param, f"Invalid hash: {param} must be a hash.")
        return clean_fields(self.fields, value, prefix=param)


class Array(Field):
    """A list (`a[]=…` or `a[0]=…`); "" is an empty list."""

    def __init__(self, item: Field, *, max_items: int = 100, **options):
        super().__init__(**options)
        self.item = item
        self.max_items = max_items

    def clean(self, value, param):
        if value == "":
            return []
        if isinstance(value, dict):
            if not all(key.isascii() and key.isdigit() and len(key) < 6 for key in value):
                raise invalid(param, f"Invalid array: {param} must be an array.")
            value = [value[key] for key in sorted(value, key=int)]
        if not isinstance(value, list):
            raise invalid(param, f"Invalid array: {param} must be an array.")
        if len(value) > self.max_items:
            raise invalid(param, f"{param} can have at most {self.max_items} items.")
        return [self.item.clean(item, f"{param}[{index}]") for index, item in enumerate(value)]


class Range(Field):
    """A list filter on a timestamp: `created=T` or `created[gte]=T` (also gt, lt, lte)."""

    OPERATORS = ("gt", "gte", "lt", "lte")

    def clean(self, value, param):
        seconds = Timestamp()
        if isinstance(value, dict):
            cleaned = clean_fields(dict.fromkeys(self.OPERATORS, seconds), value, prefix=param)
            return {op: when for op, when in cleaned.items() if when is not None}
        when = seconds.clean(value, param)
        return {"gte": when, "lte": when} if when is not None else {}


class Unsupported(Field):
    """A Stripe parameter Relance does not implement yet: refused naming it, never ignored.

    Values in `harmless` (the parameter's "do nothing" setting, as `prorate=false`) pass and
    clean to None.
    """

    def __init__(self, reason: str = "", *, harmless: tuple = (), **options):
        super().__init__(**options)
        self.reason = reason
        self.harmless = harmless

    def clean(self, value, param):
        if value in self.harmless:
            return None
        message = f"Relance does not support {param} yet."
        if self.reason:
            message = f"{message} {self.reason}"
        raise invalid(param, message, "parameter_unsupported")


def clean_fields(fields: dict[str, Field], data: dict, *, prefix: str | None = None) -> dict:
    """Every given key cleaned by its field; unknown keys and missing required ones refused.

    Only keys that were sent appear in the result, so an endpoint can tell "not given" from
    "given empty" (which unsets in Stripe).
    """

    def name(key):
        return f"{prefix}[{key}]" if prefix else key

    for key in data:
        if key not in fields:
            raise unknown(name(key))
    cleaned = {}
    for key, field in fields.items():
        if key not in data:
            if field.required:
                raise missing(name(key))
            continue
        value = field.clean(data[key], name(key))
        if field.required and value in (None, ""):
            raise missing(name(key))
        cleaned[key] = value
    return cleaned


class Schema:
    """The parameters one endpoint accepts; `expand` is always accepted."""

    def __init__(self, fields: dict[str, Field] | None = None):
        self.fields = {
            **(fields or {}),
            "expand": Array(String(max_length=500), max_items=50),
        }

    def clean(self, data: dict) -> dict:
        return clean_fields(self.fields, data)

    def extend(self, fields: dict[str, Field]) -> "Schema":
        return Schema({**{k: v for k, v in self.fields.items() if k != "expand"}, **fields})


__all__ = [
    "ApiError",
    "Array",
    "Boolean",
    "DecimalNumber",
    "Enum",
    "Field",
    "Hash",
    "Integer",
    "Metadata",
    "Range",
    "Schema",
    "String",
    "Timestamp",
    "Unsupported",
    "decode",
    "parse_pairs",
]
