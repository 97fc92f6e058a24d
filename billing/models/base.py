"""What every public billing object shares: a Stripe id, `object`, `livemode`, `created`."""

import functools

import orjson
from django.db import models
from django.db.models import Q, signals
from django.db.models.base import ModelState
from django.db.models.fields import return_None
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.ids import IdFactory
from billing.validators import validate_metadata


def id_field(prefix: str):
    """The primary key: a Stripe-style id with `prefix` (SPEC R-CORE-2)."""
    return models.CharField(
        primary_key=True, max_length=40, default=IdFactory(prefix), editable=False
    )


class BulkJSONField(models.JSONField):
    """The event payload's field: stored as `text` on PostgreSQL, and bulk-inserted through
    `VALUES` rather than `UNNEST`.

    `text`, not `jsonb` nor `json`: an event's payload is written once, by the serializer
    (`batching.json_text`), read whole, and never searched in SQL. `jsonb` made PostgreSQL parse
    every payload into its binary form, sorting every object's keys on the way — a tenth of the
    database's work for a renewal (ten events, ~35 KB of JSON); `json` still ran its parser
    over every payload to check it (6 µs an event, 8% of the database's work for a renewal,
    migration 0017). The text is kept as written and handed back in the order the serializer
    wrote it; this field parses it on the way out, as on SQLite, where JSON is text too.

    Django 5.2 bulk-inserts PostgreSQL rows as arrays (`UNNEST`), and psycopg escapes every
    quote of every JSON document placed in a text array with a regular expression: a thousand
    event payloads took 1.7 s that way against 0.4 s as plain `VALUES` (measured). Declaring a
    placeholder is how a field opts out of `UNNEST`.
    """

    # Its values are `{"object": rendering, …}`: `batching.payload_text` encodes a rendering
    # that several events share once.
    carries_objects = True

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "text"
        return super().db_type(connection)

    def get_placeholder(self, value, compiler, connection):
        return "%s"

    def get_db_prep_value(self, value, connection, prepared=False):
        adapted = super().get_db_prep_value(value, connection, prepared)
        if isinstance(adapted, Jsonb):
            # The column is text: the payload goes as the text it is kept as.
            return adapted.dumps(adapted.obj)
        return adapted

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str) and self.decoder is None:
            try:
                return orjson.loads(value)  # several times faster than json.loads
            except orjson.JSONDecodeError:
                pass  # what orjson refuses (NaN, integers past 64 bits) goes to Django's
        if not isinstance(value, str | bytes | None):
            return value  # parsed by the driver already
        return super().from_db_value(value, expression, connection)


def metadata_field():
    """A string→string map with Stripe's limits (SPEC R-CORE-5)."""
    return models.JSONField(default=dict, blank=True, validators=[validate_metadata])


def in_mode(livemode: bool) -> Q:
    """Objects of one mode, written so that SQLite can use the (account, livemode, …) indexes.

    Django renders `livemode=False` as `NOT "livemode"`, which SQLite cannot match against an
    index column, so lists fell back to the account index and a sort of every row (measured: 250
    ms against 1 ms for a page of 100,000 customers). `IN (0)` is the same condition, indexable.
    """
    return Q(livemode__in=[bool(livemode)])


@functools.cache
def _row_attnames(model: type) -> tuple[str, ...] | None:
    """The attributes a whole row of `model` sets, in column order; None when an instance must
    be made by `Model.__init__` (a model with its own `__init__`, or a field whose descriptor
    does something on assignment other than a foreign key's, which a new instance skips)."""
    if model.__init__ not in (models.Model.__init__, FastLoaded.__init__):
        return None
    attnames = []
    for field in model._meta.concrete_fields:
        descriptor = model.__dict__.get(field.attname) or getattr(model, field.attname, None)
        if hasattr(descriptor, "__set__") and not isinstance(
            descriptor, ForeignKeyDeferredAttribute
        ):
            return None
        attnames.append(field.attname)
    return tuple(attnames)


@functools.cache
def _new_plan(model: type):
    """How `FastLoaded.__init__` makes a new `model` from keywords: the defaults that are
    constants (Django hands every new instance the same object too), the fields whose default
    is made per instance, every attribute name, and the foreign keys given as objects (set
    through their descriptor, as Django does). None when `Model.__init__` must do it."""
    if _row_attnames(model) is None:
        return None
    constants, factories, relations = {}, [], {}
    for field in model._meta.concrete_fields:
        if getattr(field, "generated", False):
            return None
        default = field._get_default
        if default is return_None:
            constants[field.attname] = None
        elif default is str:
            constants[field.attname] = ""
        elif field.is_relation:
            return None  # a foreign key's own default (an object stands for its key)
        elif field.has_default() and not callable(field.default):
            constants[field.attname] = field.default
        else:
            factories.append((field.attname, default))
        if field.is_relation:
            relations[field.name] = field.attname
    attnames = frozenset(field.attname for field in model._meta.concrete_fields)
    return constants, tuple(factories), attnames, relations


class FastLoaded:
    """Rows read from the database become instances without going through `Model.__init__`.

    A batch of renewals reads ~15 rows a renewal (its jobs, subscriptions, customers, items,
    invoices), and `Model.__init__` assigned each of their 20 to 50 columns one by one, through
    the foreign keys' descriptors, and sent two signals nobody listens to: 10% of a batch's
    time. A whole row now fills the instance's attributes at once, which is what `__init__`
    leaves on a new instance (a foreign key's descriptor only clears a cached object, which a
    new instance does not have). Partial rows (`only`, `defer`), models with signal receivers
    and the cases `_row_attnames` refuses go through Django's own `from_db`.
    """

    def __init__(self, *args, **kwargs):
        """A new instance from keywords, as `Model.__init__` makes it, without its walk over
        every field: the events, invoices, lines and jobs a renewal creates have 15 to 50 each
        (~15% of a batch's time went to it). Positional values, `pk`, properties, unknown
        names (Django's TypeError) and models with init-signal receivers go through Django."""
        plan = _new_plan(type(self))
        if args or plan is None or signals.pre_init.receivers or signals.post_init.receivers:
            super().__init__(*args, **kwargs)
            return
        constants, factories, attnames, relations = plan
        objects = kwargs.keys() - attnames
        if objects and (
            not objects <= relations.keys() or any(relations[name] in kwargs for name in objects)
        ):
            super().__init__(*args, **kwargs)
            return
        attributes = self.__dict__
        attributes["_state"] = ModelState()
        attributes.update(constants)
        for attname, default in factories:
            if attname not in kwargs:
                attributes[attname] = default()
        if not objects:
            attributes.update(kwargs)
            return
        for name, value in kwargs.items():
            if name in objects:
                # The descriptor checks the object's model, sets the key and caches the object.
                setattr(self, name, value)
            else:
                attributes[name] = value

    @classmethod
    def from_db(cls, db, field_names, values):
        attnames = _row_attnames(cls)
        if (
            attnames is None
            or len(values) != len(attnames)
            or signals.pre_init.receivers
            or signals.post_init.receivers
        ):
            return super().from_db(db, field_names, values)
        new = cls.__new__(cls)
        state = ModelState()
        state.adding = False
        state.db = db
        attributes = new.__dict__
        attributes["_state"] = state
        attributes.update(zip(attnames, values, strict=True))
        return new


def account_indexed_by_meta():
    """`ModeScoped.account` for a model whose `Meta.indexes` begin with the account: no index
    of its own, which every insert and every moved row would also have to write."""
    return models.ForeignKey(
        "billing.Account", on_delete=models.CASCADE, related_name="+", db_index=False
    )


def optional_account():
    """A Connect account an object may name (`on_behalf_of`, `transfer_data.destination`,
    `application`): usually none, so it is indexed where set (`index_where_set` in Meta)."""
    return models.ForeignKey(
        "billing.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )


def optional_payment_method():
    """An object's own default payment method, usually none: indexed where set (Meta)."""
    return models.ForeignKey(
        "billing.PaymentMethod",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )


def index_where_set(field: str, name: str) -> models.Index:
    """An index of the rows whose (nullable, mostly empty) foreign key `field` is set: deletes
    of the rows it points to still find theirs through it, and the many rows without one
    (a Connect account on a plain subscription) cost nothing to write."""
    return models.Index(fields=[field], name=name, condition=Q(**{f"{field}__isnull": False}))


class ModeScoped(FastLoaded, models.Model):
    """An object that belongs to one account and one mode; test and live never mix (R-CORE-3)."""

    OBJECT: str = ""

    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=False)
    # Set by services from the object's clock (R-CORE-4); the default only serves data loads.
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self):
        return self.pk or f"new {self.OBJECT}"

    @property
    def object(self) -> str:
        return self.OBJECT

    @property
    def mode_label(self) -> str:
        return "live" if self.livemode else "test"
