"""Stripe's error responses: `{"error": {"type", "code", "message", "param", …}}` and a status.

Messages and codes follow Stripe's own, so that SDKs raise the same exception classes
(`InvalidRequestError` for 400/404, `AuthenticationError` for 401, `CardError` for 402,
`PermissionError` for 403, `IdempotencyError`, `RateLimitError` for 429).
"""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import JsonResponse

INVALID_REQUEST = "invalid_request_error"


class ApiError(Exception):
    """An error the API answers with; `extra` holds Stripe's other fields (`decline_code`…)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        **extra,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body(), status=self.status)


def invalid(param: str | None, message: str, code: str | None = None) -> ApiError:
    """A 400 about one parameter."""
    return ApiError(message, param=param, code=code)


def missing(param: str) -> ApiError:
    return ApiError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown(param: str) -> ApiError:
    return ApiError(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def not_found(object_label: str, object_id: str, *, param: str = "id") -> ApiError:
    """Stripe's "No such customer: 'cus_…'"; 404 for the object in the URL, 400 for a param."""
    return ApiError(
        f"No such {object_label}: '{object_id}'",
        status=404 if param == "id" else 400,
        param=param,
        code="resource_missing",
    )


def unrecognized_url(method: str, path: str) -> ApiError:
    return ApiError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs.",
        status=404,
    )


def internal() -> ApiError:
    return ApiError(
        "An unexpected error occurred on our side; nothing was changed.",
        status=500,
        type="api_error",
    )


def from_validation_error(error: ValidationError, aliases: dict | None = None) -> ApiError:
    """The first problem a service reported, as Stripe's 400 naming its parameter.

    Services key their errors by Stripe parameter names; `aliases` maps the few that are
    model field names (`invoice_settings_default_payment_method`) to the API's name.
    """
    aliases = aliases or {}
    if hasattr(error, "error_dict"):
        key, errors = next(iter(error.error_dict.items()))
        first = errors[0]
        param = None if key == NON_FIELD_ERRORS else aliases.get(key, key)
    else:
        first = error.error_list[0]
        param = None
    message = first.message % first.params if first.params else first.message
    return ApiError(str(message), param=param, code=first.code)
