"""The request cycle every /v1 endpoint shares, and helpers for resource views.

`ApiView.dispatch`: request id → key and account (`auth`) → rate limit → form decoding →
the method's schema → idempotency (POST) → the handler in one transaction → `serialize` and
`expand` → JSON with `Request-Id`. Handlers are thin: they turn parameters into one service
call and return the model object (or an already rendered dict: lists, deletion stubs).
"""

import contextlib
import functools
import logging

from django.core.exceptions import RequestDataTooBig, ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from billing import events, ids, prepared
from billing.api import idempotency
from billing.api.auth import authenticate, check_rate_limit
from billing.api.errors import ApiError, from_validation_error, internal, invalid, not_found
from billing.api.expand import expand
from billing.api.params import Schema, decode, parse_pairs
from billing.models.base import in_mode
from billing.prepared import Prepared
from billing.serializers import serialize
from billing.services import CardError
from billing.validators import validate_metadata

logger = logging.getLogger(__name__)

API_VERSION_HEADER = "2025-03-31.basil"


def scoped(ctx, model):
    """`model`'s objects in the account the request acts as and the key's mode (R-CORE-3)."""
    return model.objects.filter(account=ctx.account).filter(in_mode(ctx.livemode))


@functools.cache
def scoped_lookup(model, related: tuple = (), *, for_update=False, **conditions) -> Prepared:
    """The object with an id in an account and mode — `scoped(ctx, model)` narrowed by
    `conditions`, with `related` selected, its row locked if `for_update` — as a query
    compiled once (billing/prepared.py): `.first(account_id, livemode, object_id)`. The
    lookups every request makes."""

    def build(account_id, livemode, pk):
        queryset = model.objects.filter(account=account_id).filter(in_mode(livemode))
        if conditions:
            queryset = queryset.filter(**conditions)
        if related:  # (`select_related()` without names would follow every foreign key)
            queryset = queryset.select_related(*related)
        if for_update:
            # The row alone (PostgreSQL cannot lock the nullable side of an outer join), and
            # FOR NO KEY UPDATE: the caller changes columns, never the key, so other
            # transactions may still insert rows that refer to it (batching.next_in_sequence).
            queryset = queryset.select_for_update(of=("self",), no_key=True)
        return queryset.filter(pk=pk)

    return Prepared(build)


def lookup_read(ctx, lookup: Prepared, object_id: str) -> list:
    """`get_or_404(…, lookup=lookup)`'s query as reads for `prepared.ahead` (none for an id
    that names nothing)."""
    if "\x00" in object_id:
        return []
    return [(lookup, "first", (ctx.account.pk, ctx.livemode, object_id))]


def get_or_404(
    ctx,
    model,
    object_id: str,
    label: str,
    *,
    param: str = "id",
    queryset=None,
    lookup: Prepared | None = None,
):
    """The object with that id in the caller's scope, or Stripe's "No such …" error.

    `queryset` narrows the scope; `lookup` (a `scoped_lookup`) does the same as a compiled
    query. Without either, the scope is `scoped(ctx, model)`."""
    if "\x00" in object_id:
        # An id with NUL names nothing (and PostgreSQL refuses to even compare it).
        obj = None
    elif queryset is not None:
        obj = queryset.filter(pk=object_id).first()
    else:
        (read,) = lookup_read(ctx, lookup or scoped_lookup(model), object_id)
        obj = prepared.run(read)
    if obj is None:
        raise not_found(label, object_id, param=param)
    return obj


def checked_metadata(value: dict, param: str = "metadata") -> dict:
    """`value` if within Stripe's metadata limits (SPEC R-CORE-5), else a 400 naming `param`."""
    try:
        validate_metadata(value)
    except ValidationError as error:
        raise invalid(param, error.messages[0]) from None
    return value


def deleted(obj_id: str, object_name: str) -> dict:
    """Stripe's answer to a DELETE."""
    return {"id": obj_id, "object": object_name, "deleted": True}


def _read_params(request) -> dict:
    """The decoded parameters: the query string, and for POST the form body too."""
    pairs = parse_pairs(request.META.get("QUERY_STRING", ""))
    if request.method == "POST":
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        try:
            body = request.body
        except RequestDataTooBig:
            raise ApiError("The request body is too large.", status=413) from None
        if body:
            if content_type not in ("", "application/x-www-form-urlencoded"):
                raise ApiError(
                    f"Invalid request: unsupported Content-Type {content_type[:100]}. "
                    "Send application/x-www-form-urlencoded parameters."
                )
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError("Invalid request: the body is not valid UTF-8.") from None
            pairs += parse_pairs(text)
    return decode(pairs)


@method_decorator(csrf_exempt, name="dispatch")
class ApiView(View):
    """Base of every /v1 view: subclasses define `get`/`post`/`delete(ctx, params, **kw)` and
    the matching `get_params`/`post_params`/`delete_params` schemas."""

    http_method_names = ["get", "post", "delete"]
    # Views whose service records a declined payment before raising CardError (`pay`,
    # `confirm`) commit that record and answer 402; elsewhere a decline rolls everything back.
    commit_card_errors = False
    # Service ValidationError keys that are not the API's parameter names.
    param_aliases: dict[str, str] = {}

    def dispatch(self, request, *args, **kwargs):
        request_id = ids.generate("req")
        try:
            response = self._respond(request, request_id, kwargs)
        except ApiError as error:
            response = error.response()
        except Exception:
            logger.exception("unexpected error in %s %s", request.method, request.path)
            response = internal().response()
        response["Request-Id"] = request_id
        response["Stripe-Version"] = API_VERSION_HEADER
        return response

    def _respond(self, request, request_id: str, kwargs: dict):
        method = request.method.lower()
        handler = getattr(self, method, None) if method in self.http_method_names else None
        if handler is None:
            raise ApiError(
                f"Unrecognized request URL ({request.method}: {request.path}).", status=404
            )
        ctx = authenticate(request, request_id=request_id)
        check_rate_limit(ctx.api_key)
        schema: Schema = getattr(self, f"{method}_params")
        params = schema.clean(_read_params(request))
        paths = params.pop("expand", [])

        row = None
        if method == "post":
            ctx.idempotency_key = request.META.get("HTTP_IDEMPOTENCY_KEY") or None
        if ctx.idempotency_key:
            row, replay = idempotency.begin(
                ctx, method=request.method, path=request.path, params=[params, paths]
            )
            if replay is not None:
                response = JsonResponse(replay["body"], status=replay["status"])
                response["Idempotent-Replayed"] = "true"
                response["Original-Request"] = replay["request_id"]
                return response
        # Reads need no transaction: on SQLite every atomic block takes the write lock.
        atomic = transaction.atomic() if method != "get" else contextlib.nullcontext()
        declined = None
        try:
            with atomic:
                # Events record this request (SPEC R-EVT-1); work queued for after commit
                # (clock advances) runs outside it, as Stripe's automatic events have no request.
                with events.request_context(
                    request_id=ctx.request_id, idempotency_key=ctx.idempotency_key
                ):
                    try:
                        result = handler(ctx, params, **kwargs)
                    except CardError as error:
                        if not self.commit_card_errors:
                            raise
                        # A declined /pay or /confirm is recorded (attempt count, events) and
                        # that record commits, as Stripe's does; only then is the 402 answered.
                        declined = self._as_api_error(error)
                if declined is not None:
                    body = declined.body()
                    if row is not None:
                        idempotency.finish(row, status=declined.status, body=body)
                else:
                    body = serialize(result) if not isinstance(result, dict) else result
                    body = expand(body, paths, ctx)
                    if row is not None:
                        idempotency.finish(row, status=200, body=body)
        except (ApiError, ValidationError, CardError) as error:
            api_error = self._as_api_error(error)
            if row is not None:
                # The work rolled back; the error is the key's result, replayed as is.
                idempotency.finish(row, status=api_error.status, body=api_error.body())
            raise api_error from None
        except BaseException:
            if row is not None:
                idempotency.abandon(row)
            raise
        if declined is not None:
            raise declined
        response = JsonResponse(body)
        if ctx.idempotency_key:
            response["Idempotency-Key"] = ctx.idempotency_key
        return response

    def _as_api_error(self, error) -> ApiError:
        if isinstance(error, ApiError):
            return error
        if isinstance(error, CardError):
            # Stripe's 402: the gateway's error object (code, decline_code, message…) as is.
            body = dict(error.error)
            return ApiError(
                body.pop("message", str(error)),
                status=402,
                type=body.pop("type", "card_error"),
                code=body.pop("code", None),
                param=body.pop("param", None),
                **body,
            )
        return from_validation_error(error, self.param_aliases)


class UnknownEndpoint(View):
    """Every other /v1 URL: Stripe's 404 (after authentication, as Stripe checks the key first)."""

    @method_decorator(csrf_exempt)
    def dispatch(self, request, *args, **kwargs):
        request_id = ids.generate("req")
        try:
            authenticate(request, request_id=request_id)
            error = ApiError(
                f"Unrecognized request URL ({request.method}: {request.path}).", status=404
            )
        except ApiError as auth_error:
            error = auth_error
        response = error.response()
        response["Request-Id"] = request_id
        return response
