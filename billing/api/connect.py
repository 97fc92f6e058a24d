"""Connect money through the API (SPEC R-CON-2/3/4/7): /v1/transfers, /v1/application_fees,
/v1/balance, /v1/balance_transactions, and `POST /oauth/deauthorize`.

Everything is scoped to the account the request acts as and the key's mode (SPEC R-CORE-3):
a platform sees the transfers it sent and the fees it collected; under `Stripe-Account` (or
with its own key) a connected account sees its own balance and balance transactions.
"""

from billing.api import lists
from billing.api.base import ApiView, get_or_404, scoped
from billing.api.errors import ApiError
from billing.api.params import Enum, Schema, String, Unsupported
from billing.choices import AccountType, LedgerEntryType
from billing.models import Account, ApplicationFee, BalanceTransaction, Transfer
from billing.serializers import serialize_balance
from billing.services import connect

ID = String(max_length=255)
NO_CHARGES = "Relance has no Charge objects: each fee names its PaymentIntent (payment_intent)."

# Stripe's balance transaction types: Relance writes the first four; filtering on the others is
# valid and finds nothing.
BALANCE_TRANSACTION_TYPES = (
    *LedgerEntryType.values,
    "adjustment",
    "application_fee_refund",
    "payment_refund",
    "payout",
    "refund",
    "stripe_fee",
    "transfer_cancel",
    "transfer_failure",
    "transfer_refund",
)


# --- transfers -------------------------------------------------------------------------------


class TransfersView(ApiView):
    """The transfers the account sent (destination charges), newest first."""

    get_params = Schema(
        {**lists.LIST_FIELDS, "destination": ID, "transfer_group": String(max_length=64)}
    )

    def get(self, ctx, params):
        transfers = scoped(ctx, Transfer)
        if params.get("destination"):
            transfers = transfers.filter(destination_id=params["destination"])
        if params.get("transfer_group"):
            transfers = transfers.filter(transfer_group=params["transfer_group"])
        return lists.page(
            transfers,
            params,
            url="/v1/transfers",
            object_label="transfer",
            cursor_queryset=scoped(ctx, Transfer),
        )


class TransferView(ApiView):
    """Retrieve one transfer the account sent."""

    get_params = Schema()

    def get(self, ctx, params, transfer_id):
        return get_or_404(ctx, Transfer, transfer_id, "transfer")


# --- application fees ------------------------------------------------------------------------


class ApplicationFeesView(ApiView):
    """The fees the platform collected from its connected accounts, newest first."""

    get_params = Schema({**lists.LIST_FIELDS, "charge": Unsupported(NO_CHARGES)})

    def get(self, ctx, params):
        return lists.page(
            scoped(ctx, ApplicationFee),
            params,
            url="/v1/application_fees",
            object_label="application fee",
        )


class ApplicationFeeView(ApiView):
    """Retrieve one fee the platform collected."""

    get_params = Schema()

    def get(self, ctx, params, fee_id):
        return get_or_404(ctx, ApplicationFee, fee_id, "application fee")


# --- balance ---------------------------------------------------------------------------------


class BalanceView(ApiView):
    """`GET /v1/balance`: what the account holds per currency in the key's mode. Funds are
    available at once (nothing is pending); an account that never moved money shows zero in
    its default currency, as Stripe's does."""

    get_params = Schema()

    def get(self, ctx, params):
        amounts = connect.balance(ctx.account, ctx.livemode) or {ctx.account.default_currency: 0}
        return serialize_balance(amounts, ctx.livemode)


class BalanceTransactionsView(ApiView):
    """The account's balance movements, newest first."""

    get_params = Schema(
        {
            **lists.LIST_FIELDS,
            "type": Enum(*BALANCE_TRANSACTION_TYPES),
            "source": ID,
            "currency": String(max_length=3),
            "payout": Unsupported("Relance has no payouts: funds are available at once."),
        }
    )

    def get(self, ctx, params):
        transactions = scoped(ctx, BalanceTransaction)
        if params.get("type"):
            transactions = transactions.filter(type=params["type"])
        if params.get("source"):
            transactions = transactions.filter(source=params["source"])
        if params.get("currency"):
            transactions = transactions.filter(currency=params["currency"].lower())
        return lists.page(
            transactions,
            params,
            url="/v1/balance_transactions",
            object_label="balance transaction",
            cursor_queryset=scoped(ctx, BalanceTransaction),
        )


class BalanceTransactionView(ApiView):
    """Retrieve one balance transaction of the account."""

    get_params = Schema()

    def get(self, ctx, params, transaction_id):
        return get_or_404(ctx, BalanceTransaction, transaction_id, "balance transaction")


# --- OAuth -----------------------------------------------------------------------------------


class OAuthError(ApiError):
    """Stripe's OAuth error shape, `{"error": "<code>", "error_description": "…"}`: the SDKs
    raise `stripe.oauth_error.InvalidClientError` and friends from it."""

    def __init__(self, code: str, description: str, *, status: int = 400):
        super().__init__(description, status=status, code=code)

    def body(self) -> dict:
        return {"error": self.code, "error_description": self.message}


class OAuthDeauthorizeView(ApiView):
    """`POST /oauth/deauthorize` (Stripe's connect.stripe.com): the platform disconnects one
    of its connected accounts (SPEC R-CON-7), authenticated with the platform's secret key.
    `client_id` is the platform's account id (Relance's Connect "application")."""

    http_method_names = ["post"]
    post_params = Schema(
        {
            "client_id": String(max_length=255, required=True),
            "stripe_user_id": String(max_length=255, required=True),
        }
    )

    def _respond(self, request, request_id, kwargs):
        try:
            return super()._respond(request, request_id, kwargs)
        except OAuthError:
            raise
        except ApiError as error:
            if error.status in (401, 429):
                # Keys and rate limits answer as the rest of the API (AuthenticationError…).
                raise
            raise OAuthError("invalid_request", error.message, status=error.status) from None

    def post(self, ctx, params):
        platform = ctx.api_key.account
        if params["client_id"] != platform.id or platform.type != AccountType.PLATFORM:
            raise OAuthError(
                "invalid_client", f"No such application: '{params['client_id'][:64]}'", status=401
            )
        user_id = params["stripe_user_id"]
        account = None
        if "\x00" not in user_id:
            account = Account.objects.filter(
                pk=user_id, platform=platform, type=AccountType.CONNECTED
            ).first()
        if account is None or account.is_disconnected:
            raise OAuthError(
                "invalid_client",
                f"This application is not connected to stripe account {user_id[:64]}, or that "
                "account does not exist.",
                status=401,
            )
        connect.disconnect_account(account)
        return {"stripe_user_id": account.id}
