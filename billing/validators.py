"""Validators shared by models, forms and the API."""

from django.core.exceptions import ValidationError

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def validate_metadata(value):
    """Stripe's metadata limits (SPEC R-CORE-5): a string→string map, 50 keys, 40/500 chars."""
    if not isinstance(value, dict):
        raise ValidationError("metadata must be a map of string keys to string values.")
    if len(value) > METADATA_MAX_KEYS:
        raise ValidationError(f"metadata can have at most {METADATA_MAX_KEYS} keys.")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError("metadata keys must be non-empty strings.")
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise ValidationError(
                f"metadata key {key[:40]!r}… is longer than {METADATA_MAX_KEY_LENGTH} characters."
            )
        if not isinstance(item, str):
            raise ValidationError(f"metadata[{key}] must be a string.")
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise ValidationError(
                f"metadata[{key}] is longer than {METADATA_MAX_VALUE_LENGTH} characters."
            )


def validate_currency(value):
    """A lowercase ISO 4217 code, as Stripe writes them."""
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.islower()):
        raise ValidationError(f"{value!r} is not a lowercase three-letter currency code.")
