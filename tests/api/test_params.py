"""The form decoder and parameter schemas of the /v1 API (no database)."""

import datetime
from decimal import Decimal

import pytest

from billing.api.errors import ApiError
from billing.api.params import (
    Array,
    Boolean,
    DecimalNumber,
    Enum,
    Hash,
    Integer,
    Metadata,
    Range,
    Schema,
    String,
    Timestamp,
    decode,
    parse_pairs,
)


def parse(query: str) -> dict:
    return decode(parse_pairs(query))


def error_of(callable_, *args) -> ApiError:
    with pytest.raises(ApiError) as raised:
        callable_(*args)
    return raised.value


def test_nested_brackets_become_nested_dicts():
    assert parse("items[0][price]=price_1&items[0][quantity]=2&metadata[plan]=pro") == {
        "items": {"0": {"price": "price_1", "quantity": "2"}},
        "metadata": {"plan": "pro"},
    }


def test_deep_nesting_is_decoded():
    decoded = parse("trial_settings[end_behavior][missing_payment_method]=cancel")
    assert decoded == {"trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}}}


def test_empty_brackets_append_to_a_list():
    assert parse("expand[]=customer&expand[]=latest_invoice") == {
        "expand": ["customer", "latest_invoice"]
    }


def test_empty_values_are_kept_to_unset():
    assert parse("description=&metadata=") == {"description": "", "metadata": ""}


def test_a_repeated_scalar_keeps_the_last_value():
    assert parse("email=a%40x.co&email=b%40x.co") == {"email": "b@x.co"}


def test_percent_encoded_brackets_are_decoded():
    assert parse("metadata%5Bplan%5D=pro") == {"metadata": {"plan": "pro"}}


@pytest.mark.parametrize(
    "query",
    [
        "a=1&a[b]=2",
        "a[b]=1&a=2",
        "a[]=1&a[0]=2",
        "a[0]=1&a[]=2",
        "a=1&a[]=2",
    ],
)
def test_a_key_used_as_value_and_hash_is_refused(query):
    error = error_of(parse, query)
    assert error.status == 400
    assert error.param == "a"


@pytest.mark.parametrize(
    "key", ["[x]", "a[b", "a]b", "a[b]c", "a[][b]", "a[b][c][d][e][f][g][h][i]"]
)
def test_malformed_names_are_refused_naming_them(key):
    error = error_of(parse, f"{key}=1")
    assert error.param == key


def test_an_indexed_dict_cleans_as_an_array_in_index_order():
    field = Array(String())
    assert field.clean({"1": "b", "0": "a", "10": "c"}, "expand") == ["a", "b", "c"]


def test_a_hash_where_an_array_is_expected_is_refused():
    error = error_of(Array(String()).clean, {"x": "a"}, "expand")
    assert error.param == "expand"


def test_an_array_longer_than_its_limit_is_refused():
    error = error_of(Array(String(), max_items=2).clean, ["a", "b", "c"], "ids")
    assert "at most 2" in error.message


def test_array_items_are_named_by_index():
    error = error_of(Array(Integer()).clean, ["1", "x"], "counts")
    assert error.param == "counts[1]"


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0), ("-5", -5), ("2000", 2000), ("+7", 7), ("", None)]
)
def test_integers_parse(raw, expected):
    assert Integer().clean(raw, "n") == expected


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "99999999999999999999999", "١٢", {"a": "1"}])
def test_invalid_integers_are_refused(raw):
    error = error_of(Integer().clean, raw, "unit_amount")
    assert (error.param, error.code) == ("unit_amount", "parameter_invalid_integer")


def test_integer_bounds_are_enforced():
    assert error_of(Integer(max_value=100).clean, "101", "limit").param == "limit"
    assert error_of(Integer(min_value=1).clean, "0", "limit").param == "limit"


def test_booleans_are_true_or_false_only():
    assert Boolean().clean("true", "active") is True
    assert Boolean().clean("false", "active") is False
    assert error_of(Boolean().clean, "yes", "active").param == "active"
    assert error_of(Boolean().clean, {"a": "b"}, "active").param == "active"


def test_strings_refuse_hashes_and_overlong_values():
    assert error_of(String().clean, {"a": "b"}, "email").param == "email"
    assert error_of(String(max_length=3).clean, "abcd", "currency").param == "currency"


def test_enums_list_their_choices():
    error = error_of(Enum("day", "week", "month", "year").clean, "decade", "recurring[interval]")
    assert error.param == "recurring[interval]"
    assert "day, week, month, or year" in error.message


def test_decimals_keep_two_places():
    assert DecimalNumber(places=2).clean("12.5", "percent_off") == Decimal("12.5")
    assert error_of(DecimalNumber(places=2).clean, "12.345", "percent_off").param == "percent_off"
    assert error_of(DecimalNumber().clean, "NaN", "percent_off").param == "percent_off"
    assert error_of(DecimalNumber().clean, "1" * 50, "percent_off").param == "percent_off"


def test_timestamps_are_aware_datetimes_and_now_when_allowed():
    assert Timestamp().clean("0", "t") == datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    assert Timestamp(allow_now=True).clean("now", "trial_end") == "now"
    assert error_of(Timestamp().clean, "now", "t").param == "t"
    assert error_of(Timestamp().clean, "99999999999999", "t").param == "t"


def test_metadata_is_a_string_map_or_empty_to_clear():
    assert Metadata().clean({"plan": "pro"}, "metadata") == {"plan": "pro"}
    assert Metadata().clean("", "metadata") == ""
    assert error_of(Metadata().clean, "pro", "metadata").param == "metadata"
    assert error_of(Metadata().clean, {"a": {"b": "c"}}, "metadata").param == "metadata[a]"


def test_created_ranges_take_operators_or_an_exact_time():
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    seconds = str(int(when.timestamp()))
    assert Range().clean({"gte": seconds}, "created") == {"gte": when}
    assert Range().clean(seconds, "created") == {"gte": when, "lte": when}
    assert error_of(Range().clean, {"between": "1"}, "created").param == "created[between]"


def test_schemas_reject_unknown_parameters_naming_them():
    schema = Schema({"address": Hash({"city": String()})})
    error = error_of(schema.clean, {"address": {"town": "Paris"}})
    assert (error.param, error.code) == ("address[town]", "parameter_unknown")
    assert error.message == "Received unknown parameter: address[town]"
    error = error_of(schema.clean, {"nonsense": "1"})
    assert (error.param, error.code) == ("nonsense", "parameter_unknown")


def test_schemas_report_missing_required_parameters():
    schema = Schema({"currency": String(required=True)})
    error = error_of(schema.clean, {})
    assert (error.param, error.code) == ("currency", "parameter_missing")
    assert error.message == "Missing required param: currency."
    assert error_of(schema.clean, {"currency": ""}).code == "parameter_missing"


def test_schemas_keep_only_what_was_sent_and_always_accept_expand():
    schema = Schema({"name": String(), "email": String()})
    assert schema.clean({"name": "", "expand": {"0": "customer"}}) == {
        "name": "",
        "expand": ["customer"],
    }


def test_nul_characters_are_refused():
    """PostgreSQL text cannot hold NUL; the API refuses it before any query."""
    assert error_of(parse, "name=a%00b").status == 400
    assert error_of(parse, "na%00me=x").status == 400
