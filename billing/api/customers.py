"""/v1/customers and /v1/payment_methods."""

from billing import services
from billing.api import lists
from billing.api.base import ApiView, checked_metadata, get_or_404, scoped
from billing.api.params import Array, Enum, Hash, Integer, Metadata, Schema, String
from billing.gateway import TEST_TOKENS
from billing.models import Customer, CustomerBalanceTransaction, PaymentMethod
from billing.services.customers import MAX_BALANCE, MAX_INVOICE_SEQUENCE

ADDRESS = Hash(
    {
        key: String(max_length=200)
        for key in ("line1", "line2", "city", "state", "postal_code", "country")
    }
)

CUSTOMER_FIELDS = {
    "address": ADDRESS,
    "description": String(),
    "email": String(max_length=512),
    "metadata": Metadata(),
    "name": String(max_length=256),
    "phone": String(max_length=40),
    "preferred_locales": Array(String(max_length=20), max_items=10),
    "invoice_settings": Hash({"default_payment_method": String(max_length=255)}),
    # Changing it records a balance transaction (`initial` at creation, else `adjustment`).
    "balance": Integer(min_value=-MAX_BALANCE, max_value=MAX_BALANCE),
    # Its invoice numbers when the account numbers invoices for each customer.
    "invoice_prefix": String(max_length=12),
    "next_invoice_sequence": Integer(min_value=1, max_value=MAX_INVOICE_SEQUENCE),
}

DEFAULT_PM_PARAM = "invoice_settings[default_payment_method]"


def payment_method_for(ctx, value: str, *, param: str) -> PaymentMethod:
    """The payment method `value` names; in test mode a `pm_card_*` token makes a new card
    (SPEC R-INV-10), as Stripe's test mode does."""
    if not ctx.livemode and value in TEST_TOKENS:
        return services.create_payment_method(ctx.account, livemode=False, token=value)
    return get_or_404(ctx, PaymentMethod, value, "PaymentMethod", param=param)


def live_customers(ctx):
    """Customers that were not deleted: a deleted one can be read (as a stub), never changed."""
    return scoped(ctx, Customer).filter(deleted_at__isnull=True)


def _default_payment_method(params: dict):
    """`invoice_settings[default_payment_method]` if given: an id, or None to unset."""
    settings = params.pop("invoice_settings", None)
    if not settings or "default_payment_method" not in settings:
        return False, None
    return True, settings["default_payment_method"] or None


class CustomersView(ApiView):
    """Create and list customers."""

    post_params = Schema(
        {
            **CUSTOMER_FIELDS,
            "payment_method": String(max_length=255),
            "test_clock": String(max_length=255),
        }
    )
    get_params = Schema(
        {**lists.LIST_FIELDS, "email": String(max_length=512), "test_clock": String(max_length=255)}
    )
    param_aliases = {"invoice_settings_default_payment_method": DEFAULT_PM_PARAM}

    def post(self, ctx, params):
        payment_method_id = params.pop("payment_method", "") or None
        has_default, default_id = _default_payment_method(params)
        if params.get("metadata") == "":
            params["metadata"] = None
        if params.get("address") == "":
            params["address"] = None
        if not params.get("test_clock"):
            params.pop("test_clock", None)
        if params.get("balance") is None:
            params.pop("balance", None)
        customer = services.create_customer(
            ctx.account, livemode=ctx.livemode, request_id=ctx.request_id, **params
        )
        attached = None
        if payment_method_id:
            attached = payment_method_for(ctx, payment_method_id, param="payment_method")
            services.attach_payment_method(attached, customer=customer, request_id=ctx.request_id)
        if has_default and default_id:
            # A token names the card just made from it.
            default = attached if attached and default_id == payment_method_id else default_id
            services.update_customer(
                customer,
                invoice_settings_default_payment_method=default,
                request_id=ctx.request_id,
            )
        return customer

    def get(self, ctx, params):
        customers = live_customers(ctx).prefetch_related("discounts__coupon")
        if params.get("email"):
            customers = customers.filter(email=params["email"])
        if params.get("test_clock"):
            customers = customers.filter(test_clock_id=params["test_clock"])
        return lists.page(
            customers,
            params,
            url="/v1/customers",
            object_label="customer",
            cursor_queryset=scoped(ctx, Customer),
        )


class CustomerView(ApiView):
    """Retrieve, update and delete one customer."""

    get_params = Schema()
    post_params = Schema(CUSTOMER_FIELDS)
    delete_params = Schema()
    param_aliases = {"invoice_settings_default_payment_method": DEFAULT_PM_PARAM}

    def get(self, ctx, params, customer_id):
        # A deleted customer still answers, as Stripe's `{"deleted": true}` stub.
        return get_or_404(ctx, Customer, customer_id, "customer")

    def post(self, ctx, params, customer_id):
        customer = get_or_404(ctx, Customer, customer_id, "customer", queryset=live_customers(ctx))
        has_default, default_id = _default_payment_method(params)
        if has_default:
            params["invoice_settings_default_payment_method"] = default_id
        if "balance" in params and params["balance"] is None:
            params["balance"] = 0  # "" unsets: back to no balance
        return services.update_customer(customer, request_id=ctx.request_id, **params)

    def delete(self, ctx, params, customer_id):
        customer = get_or_404(ctx, Customer, customer_id, "customer", queryset=live_customers(ctx))
        return services.delete_customer(customer, request_id=ctx.request_id)


PM_LIST_FIELDS = {**lists.LIST_FIELDS, "type": Enum("card")}


class CustomerPaymentMethodsView(ApiView):
    """A customer's payment methods (`GET /v1/customers/{id}/payment_methods`)."""

    get_params = Schema(PM_LIST_FIELDS)

    def get(self, ctx, params, customer_id):
        customer = get_or_404(ctx, Customer, customer_id, "customer", queryset=live_customers(ctx))
        return lists.page(
            scoped(ctx, PaymentMethod).filter(customer=customer),
            params,
            url=f"/v1/customers/{customer.id}/payment_methods",
            object_label="PaymentMethod",
            cursor_queryset=scoped(ctx, PaymentMethod),
        )


BILLING_DETAILS = Hash(
    {
        "address": ADDRESS,
        "email": String(max_length=512),
        "name": String(max_length=256),
        "phone": String(max_length=40),
    }
)


class PaymentMethodsView(ApiView):
    """Create cards and list payment methods."""

    post_params = Schema(
        {
            "type": Enum("card", required=True),
            "card": Hash(
                {
                    "number": String(max_length=40),
                    "exp_month": Integer(min_value=1, max_value=12),
                    "exp_year": Integer(min_value=0, max_value=9999),
                    "cvc": String(max_length=10),
                },
                blank=False,
            ),
            "billing_details": BILLING_DETAILS,
            "metadata": Metadata(),
        }
    )
    get_params = Schema({**PM_LIST_FIELDS, "customer": String(max_length=255)})

    def post(self, ctx, params):
        card = params.get("card")
        if card is not None:
            # The service takes the card as the form sent it, absent keys left out.
            card = {key: value for key, value in card.items() if value is not None}
        return services.create_payment_method(
            ctx.account,
            livemode=ctx.livemode,
            card=card,
            billing_details=params.get("billing_details") or None,
            metadata=params.get("metadata") or None,
        )

    def get(self, ctx, params):
        payment_methods = scoped(ctx, PaymentMethod)
        if params.get("customer"):
            customer = get_or_404(ctx, Customer, params["customer"], "customer", param="customer")
            payment_methods = payment_methods.filter(customer=customer)
        return lists.page(
            payment_methods,
            params,
            url="/v1/payment_methods",
            object_label="PaymentMethod",
            cursor_queryset=scoped(ctx, PaymentMethod),
        )


class PaymentMethodView(ApiView):
    """Retrieve one payment method."""

    get_params = Schema()

    def get(self, ctx, params, payment_method_id):
        return get_or_404(ctx, PaymentMethod, payment_method_id, "PaymentMethod")


class PaymentMethodAttachView(ApiView):
    """Attach a payment method (or a `pm_card_*` test token) to a customer."""

    post_params = Schema({"customer": String(max_length=255, required=True)})

    def post(self, ctx, params, payment_method_id):
        customer = get_or_404(
            ctx,
            Customer,
            params["customer"],
            "customer",
            param="customer",
            queryset=live_customers(ctx),
        )
        if not ctx.livemode and payment_method_id in TEST_TOKENS:
            payment_method = services.create_payment_method(
                ctx.account, livemode=False, token=payment_method_id
            )
        else:
            payment_method = get_or_404(ctx, PaymentMethod, payment_method_id, "PaymentMethod")
        return services.attach_payment_method(
            payment_method, customer=customer, request_id=ctx.request_id
        )


class PaymentMethodDetachView(ApiView):
    """Detach a payment method from its customer."""

    post_params = Schema()

    def post(self, ctx, params, payment_method_id):
        payment_method = get_or_404(ctx, PaymentMethod, payment_method_id, "PaymentMethod")
        return services.detach_payment_method(payment_method, request_id=ctx.request_id)


# --- customer balance transactions --------------------------------------------------------


def _balance_transactions(ctx, customer):
    return scoped(ctx, CustomerBalanceTransaction).filter(customer=customer)


class CustomerBalanceTransactionsView(ApiView):
    """A customer's balance transactions: create (an `adjustment`) and list, newest first."""

    post_params = Schema(
        {
            "amount": Integer(min_value=-MAX_BALANCE, max_value=MAX_BALANCE, required=True),
            "currency": String(max_length=3, required=True),
            "description": String(max_length=350),
            "metadata": Metadata(),
        }
    )
    get_params = Schema({**lists.LIST_FIELDS, "invoice": String(max_length=255)})

    def post(self, ctx, params, customer_id):
        customer = get_or_404(ctx, Customer, customer_id, "customer", queryset=live_customers(ctx))
        return services.create_balance_transaction(
            customer,
            amount=params["amount"],
            currency=params["currency"],
            description=params.get("description", ""),
            metadata=checked_metadata(params.get("metadata") or {}),
            request_id=ctx.request_id,
        )

    def get(self, ctx, params, customer_id):
        customer = get_or_404(ctx, Customer, customer_id, "customer")
        transactions = _balance_transactions(ctx, customer)
        if params.get("invoice"):
            transactions = transactions.filter(invoice_id=params["invoice"])
        return lists.page(
            transactions,
            params,
            url=f"/v1/customers/{customer.id}/balance_transactions",
            object_label="customer balance transaction",
            cursor_queryset=_balance_transactions(ctx, customer),
        )


class CustomerBalanceTransactionView(ApiView):
    """Retrieve one balance transaction, or change its description and metadata."""

    get_params = Schema()
    post_params = Schema({"description": String(max_length=350), "metadata": Metadata()})

    def _transaction(self, ctx, customer_id, transaction_id):
        customer = get_or_404(ctx, Customer, customer_id, "customer")
        return get_or_404(
            ctx,
            CustomerBalanceTransaction,
            transaction_id,
            "customer balance transaction",
            queryset=_balance_transactions(ctx, customer),
        )

    def get(self, ctx, params, customer_id, transaction_id):
        return self._transaction(ctx, customer_id, transaction_id)

    def post(self, ctx, params, customer_id, transaction_id):
        found = self._transaction(ctx, customer_id, transaction_id)
        return services.update_balance_transaction(
            found, description=params.get("description"), metadata=params.get("metadata")
        )
