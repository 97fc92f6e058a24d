"""/v1/payment_intents: retrieve, list, and confirm (3-D Secure completed, in test mode)."""

from billing import services
from billing.api import lists
from billing.api.base import ApiView, get_or_404, scoped
from billing.api.customers import payment_method_for
from billing.api.errors import ApiError
from billing.api.params import Schema, String, Unsupported
from billing.choices import PaymentIntentStatus
from billing.models import PaymentIntent

ID = String(max_length=255)


def _intent_or_404(ctx, intent_id: str) -> PaymentIntent:
    return get_or_404(ctx, PaymentIntent, intent_id, "payment_intent")


class PaymentIntentsView(ApiView):
    """List payment intents (Relance makes them when it collects invoices)."""

    get_params = Schema({**lists.LIST_FIELDS, "customer": ID})

    def get(self, ctx, params):
        intents = scoped(ctx, PaymentIntent)
        if params.get("customer"):
            intents = intents.filter(customer_id=params["customer"])
        return lists.page(
            intents,
            params,
            url="/v1/payment_intents",
            object_label="payment_intent",
            cursor_queryset=scoped(ctx, PaymentIntent),
        )


class PaymentIntentView(ApiView):
    """Retrieve one payment intent."""

    get_params = Schema()

    def get(self, ctx, params, intent_id):
        return _intent_or_404(ctx, intent_id)


class PaymentIntentConfirmView(ApiView):
    """Confirm a payment intent: in test mode the customer passes 3-D Secure (SPEC R-INV-5) and
    the card is charged again; paying its invoice moves the subscription on. A decline is a 402
    with its `decline_code`, recorded on the intent."""

    commit_card_errors = True
    post_params = Schema(
        {
            "payment_method": ID,
            "return_url": Unsupported("The test gateway completes authentication at once."),
            "off_session": Unsupported(harmless=("false",)),
            "mandate_data": Unsupported(),
            "payment_method_data": Unsupported("Create the payment method first."),
            "payment_method_options": Unsupported(),
            "setup_future_usage": Unsupported(),
        }
    )
    param_aliases = {"invoice": None}

    def post(self, ctx, params, intent_id):
        intent = _intent_or_404(ctx, intent_id)
        if intent.status in (PaymentIntentStatus.SUCCEEDED, PaymentIntentStatus.CANCELED):
            raise ApiError(
                "You cannot confirm this PaymentIntent because it has a status of "
                f"{intent.status}.",
                code="payment_intent_unexpected_state",
            )
        payment_method = None
        if params.get("payment_method"):
            payment_method = payment_method_for(
                ctx, params["payment_method"], param="payment_method"
            )
            if payment_method.customer_id is None and intent.customer_id:
                # A `pm_card_*` token (or a new card) is attached to the intent's customer.
                payment_method = services.attach_payment_method(
                    payment_method, customer=intent.customer, request_id=ctx.request_id
                )
        services.confirm_payment_intent(
            intent, payment_method=payment_method, request_id=ctx.request_id
        )
        return _intent_or_404(ctx, intent_id)
