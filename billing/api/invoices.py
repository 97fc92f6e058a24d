"""/v1/invoices (with their lines and the upcoming-invoice preview) and /v1/invoiceitems."""

from billing import services
from billing.api import lists
from billing.api.base import ApiView, checked_metadata, deleted, get_or_404, scoped
from billing.api.customers import live_customers
from billing.api.errors import ApiError, invalid
from billing.api.params import (
    Boolean,
    Enum,
    Hash,
    Integer,
    Metadata,
    Schema,
    String,
    Timestamp,
    Unsupported,
)
from billing.api.subscriptions import ENDED, _payment_method, acting_platform
from billing.choices import CollectionMethod, InvoiceStatus, SubscriptionStatus
from billing.models import (
    Customer,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    Price,
    Subscription,
)
from billing.services import connect
from billing.services.catalog import MAX_UNIT_AMOUNT
from billing.services.subscriptions import preview_next_invoice, preview_resume_invoice

ID = String(max_length=255)
CONNECT_ON_CREATE = "Create the invoice, then set it with POST /v1/invoices/{id}."


def invoices_of(ctx):
    """The caller's invoices, ready to render without a query per row."""
    return (
        scoped(ctx, Invoice)
        .select_related("customer", "subscription", "payment_intent")
        .prefetch_related("lines__price__product", "customer__discounts__coupon")
    )


def _invoice_or_404(ctx, invoice_id: str) -> Invoice:
    return get_or_404(ctx, Invoice, invoice_id, "invoice", queryset=invoices_of(ctx))


def _customer(ctx, customer_id: str, param: str = "customer") -> Customer:
    return get_or_404(
        ctx, Customer, customer_id, "customer", param=param, queryset=live_customers(ctx)
    )


class InvoicesView(ApiView):
    """Create (a draft `manual` invoice of the pending invoice items) and list invoices."""

    post_params = Schema(
        {
            "customer": String(max_length=255, required=True),
            "auto_advance": Boolean(),
            "collection_method": Enum(*CollectionMethod.values),
            "days_until_due": Integer(min_value=0, max_value=730),
            "description": String(max_length=1500),
            "metadata": Metadata(),
            # `include` gathers the pending items (of `subscription` if given); `exclude`
            # makes an empty draft.
            "pending_invoice_items_behavior": Enum("include", "exclude"),
            "subscription": ID,
            "application_fee_amount": Unsupported(CONNECT_ON_CREATE),
            "transfer_data": Unsupported(CONNECT_ON_CREATE),
            "on_behalf_of": Unsupported(CONNECT_ON_CREATE),
            "default_payment_method": Unsupported(),
            "due_date": Unsupported("Use days_until_due."),
        }
    )
    get_params = Schema(
        {
            **lists.LIST_FIELDS,
            "customer": ID,
            "subscription": ID,
            "status": Enum(*InvoiceStatus.values),
            "collection_method": Enum(*CollectionMethod.values),
        }
    )

    def post(self, ctx, params):
        customer = _customer(ctx, params.pop("customer"))
        options = {
            "description": params.get("description", ""),
            "metadata": checked_metadata(params.get("metadata") or {}),
        }
        for name in (
            "auto_advance",
            "collection_method",
            "days_until_due",
            "pending_invoice_items_behavior",
        ):
            if params.get(name) is not None:
                options[name] = params[name]
        if params.get("subscription"):
            options["subscription"] = get_or_404(
                ctx, Subscription, params["subscription"], "subscription", param="subscription"
            )
        # Made by the platform acting as its connected account: the platform's invoice, to
        # which it may add a fee (SPEC R-CON-5).
        return services.create_manual_invoice(
            customer, application=acting_platform(ctx), request_id=ctx.request_id, **options
        )

    def get(self, ctx, params):
        invoices = invoices_of(ctx)
        filters = {
            "customer": "customer_id",
            "subscription": "subscription_id",
            "status": "status",
            "collection_method": "collection_method",
        }
        for name, lookup in filters.items():
            if params.get(name):
                invoices = invoices.filter(**{lookup: params[name]})
        return lists.page(
            invoices,
            params,
            url="/v1/invoices",
            object_label="invoice",
            cursor_queryset=scoped(ctx, Invoice),
        )


class InvoiceView(ApiView):
    """Retrieve and update one invoice."""

    get_params = Schema()
    post_params = Schema(
        {
            "description": String(max_length=1500),
            "metadata": Metadata(),
            "auto_advance": Boolean(),
            "days_until_due": Integer(min_value=0, max_value=730),
            "due_date": Timestamp(),
            # SPEC R-CON-4: at most the invoice's total; collecting it is issue #8.
            "application_fee_amount": Integer(min_value=0, max_value=MAX_UNIT_AMOUNT * 10**4),
            "transfer_data": Hash(
                {
                    "destination": String(max_length=255, required=True),
                    "amount": Unsupported("Transfers of part of an invoice arrive with Connect."),
                }
            ),
            "on_behalf_of": String(max_length=255),
            "collection_method": Unsupported("Set it when creating the invoice."),
            "default_payment_method": Unsupported(),
            "discounts": Unsupported(),
            "footer": Unsupported(),
            "custom_fields": Unsupported(),
        }
    )

    def get(self, ctx, params, invoice_id):
        return _invoice_or_404(ctx, invoice_id)

    def post(self, ctx, params, invoice_id):
        invoice = _invoice_or_404(ctx, invoice_id)
        options = {}
        for name in ("description", "auto_advance", "days_until_due", "due_date"):
            if params.get(name) is not None:
                options[name] = params[name]
        if "metadata" in params:
            options["metadata"] = params["metadata"]
        if "application_fee_amount" in params:
            if params["application_fee_amount"] is not None:
                # SPEC R-CON-5: only on invoices the platform created, when acting as the account.
                connect.check_platform_may_change(
                    invoice, acting_platform(ctx), param="application_fee_amount"
                )
            options["application_fee_amount"] = params["application_fee_amount"]  # "" unsets
        if "transfer_data" in params:
            options["transfer_data"] = params["transfer_data"] or None
        if "on_behalf_of" in params:
            options["on_behalf_of"] = params["on_behalf_of"] or None
        services.update_invoice(invoice, request_id=ctx.request_id, **options)
        return _invoice_or_404(ctx, invoice_id)


class InvoiceActionView(ApiView):
    """A verb on one invoice (`POST /v1/invoices/{id}/<verb>`); errors about its state are not
    about a parameter."""

    param_aliases = {"invoice": None}


class InvoiceFinalizeView(InvoiceActionView):
    """Draft → open (SPEC R-INV-3); an `auto_advance` invoice charging automatically is
    collected at once."""

    post_params = Schema({"auto_advance": Unsupported("Set auto_advance when creating it.")})

    def post(self, ctx, params, invoice_id):
        invoice = _invoice_or_404(ctx, invoice_id)
        services.finalize_invoice(invoice, request_id=ctx.request_id)
        return _invoice_or_404(ctx, invoice_id)


class InvoicePayView(InvoiceActionView):
    """Pay an open invoice now; a decline is a 402 with its `decline_code` (SPEC R-INV-4/10),
    and the failed attempt is recorded."""

    commit_card_errors = True
    post_params = Schema(
        {
            "payment_method": String(max_length=255),
            "off_session": Unsupported(harmless=("false",)),
            "paid_out_of_band": Unsupported(harmless=("false",)),
            "forgive": Unsupported(harmless=("false",)),
            "source": Unsupported("Use payment_method."),
        }
    )

    def post(self, ctx, params, invoice_id):
        invoice = _invoice_or_404(ctx, invoice_id)
        payment_method = _payment_method(ctx, params.get("payment_method", ""), "payment_method")
        services.pay_invoice(invoice, payment_method=payment_method, request_id=ctx.request_id)
        return _invoice_or_404(ctx, invoice_id)


class InvoiceVoidView(InvoiceActionView):
    """Open → void."""

    post_params = Schema()

    def post(self, ctx, params, invoice_id):
        invoice = _invoice_or_404(ctx, invoice_id)
        services.void_invoice(invoice, request_id=ctx.request_id)
        return _invoice_or_404(ctx, invoice_id)


class InvoiceMarkUncollectibleView(InvoiceActionView):
    """Open → uncollectible (SPEC R-INV-8)."""

    post_params = Schema()

    def post(self, ctx, params, invoice_id):
        invoice = _invoice_or_404(ctx, invoice_id)
        services.mark_uncollectible(invoice, request_id=ctx.request_id)
        return _invoice_or_404(ctx, invoice_id)


class InvoiceLinesView(ApiView):
    """An invoice's line items, paginated (`GET /v1/invoices/{id}/lines`)."""

    get_params = Schema(
        {key: field for key, field in lists.LIST_FIELDS.items() if key != "created"}
    )

    def get(self, ctx, params, invoice_id):
        invoice = get_or_404(ctx, Invoice, invoice_id, "invoice")
        lines = scoped(ctx, InvoiceLineItem).filter(invoice=invoice)
        return lists.page(
            lines.select_related("price__product"),
            params,
            url=f"/v1/invoices/{invoice.id}/lines",
            object_label="line item",
            cursor_queryset=lines,
        )


# --- the next invoice of a subscription ----------------------------------------------------


def _no_upcoming(customer_id: str) -> ApiError:
    return ApiError(
        f"No upcoming invoices for customer: {customer_id}",
        status=404,
        code="invoice_upcoming_none",
    )


def _resume_at(params: dict) -> str | None:
    """`subscription_resume_at` or `subscription_details[resume_at]` (only `now`, as Stripe)."""
    details = params.get("subscription_details") or {}
    if params.get("subscription_resume_at") and details.get("resume_at"):
        raise invalid(
            "subscription_details[resume_at]",
            "You may only specify one of these parameters: subscription_resume_at, "
            "subscription_details[resume_at].",
        )
    return params.get("subscription_resume_at") or details.get("resume_at")


def preview(ctx, params: dict) -> dict:
    """The invoice the subscription (or the customer's only live subscription) renews with, or
    the one resuming a paused subscription now creates (`subscription_resume_at=now`)."""
    resume_at = _resume_at(params)
    subscriptions = scoped(ctx, Subscription).exclude(status__in=ENDED)
    customer = None
    if params.get("customer"):
        customer = _customer(ctx, params["customer"])
        subscriptions = subscriptions.filter(customer=customer)
    if params.get("subscription"):
        subscription = get_or_404(
            ctx,
            Subscription,
            params["subscription"],
            "subscription",
            param="subscription",
            queryset=subscriptions,
        )
    elif customer is None:
        raise invalid("customer", "Missing required param: customer or subscription.")
    else:
        subscription = subscriptions.order_by("-created").first()
    if subscription is None:
        raise _no_upcoming(customer.id)
    if resume_at:
        if subscription.status != SubscriptionStatus.PAUSED:
            raise invalid(
                "subscription_resume_at"
                if params.get("subscription_resume_at")
                else "subscription_details[resume_at]",
                "Only a paused subscription can be previewed resuming.",
            )
        return preview_resume_invoice(subscription)
    # Nothing renews: a paused subscription invoices nothing, one ending at the period end
    # neither (SPEC R-SUB-7, R-SUB-8).
    if subscription.status == SubscriptionStatus.PAUSED or subscription.cancel_at_period_end:
        raise _no_upcoming(subscription.customer_id)
    return preview_next_invoice(subscription)


PREVIEW_FIELDS = {
    "customer": ID,
    "subscription": ID,
    "subscription_resume_at": Enum("now"),
    "subscription_details": Hash(
        {
            "resume_at": Enum("now"),
            **{
                name: Unsupported("The preview shows the next renewal without changes.")
                for name in (
                    "items",
                    "proration_behavior",
                    "proration_date",
                    "trial_end",
                    "cancel_at",
                    "cancel_at_period_end",
                    "cancel_now",
                    "billing_cycle_anchor",
                    "default_tax_rates",
                    "start_date",
                )
            },
        },
        blank=False,
    ),
    "invoice_items": Unsupported(),
    "discounts": Unsupported(),
}


class InvoiceCreatePreviewView(ApiView):
    """`POST /v1/invoices/create_preview`: the next renewal invoice, never saved."""

    post_params = Schema(PREVIEW_FIELDS)

    def post(self, ctx, params):
        return preview(ctx, params)


class InvoiceUpcomingView(ApiView):
    """`GET /v1/invoices/upcoming`, as API versions before basil had it."""

    get_params = Schema(PREVIEW_FIELDS)

    def get(self, ctx, params):
        return preview(ctx, params)


# --- invoice items ----------------------------------------------------------------------------


class InvoiceItemsView(ApiView):
    """Create and list invoice items."""

    post_params = Schema(
        {
            "customer": String(max_length=255, required=True),
            "price": ID,
            "amount": Integer(min_value=-MAX_UNIT_AMOUNT, max_value=MAX_UNIT_AMOUNT),
            "currency": String(max_length=3),
            "quantity": Integer(min_value=1, max_value=2**31 - 1),
            "description": String(max_length=500),
            "subscription": ID,
            "metadata": Metadata(),
            "pricing": Unsupported("Pass price."),
            "price_data": Unsupported("Create the price first and pass its id."),
            "invoice": Unsupported("Items wait for the customer's next invoice."),
            "period": Unsupported(),
            "discountable": Unsupported(),
            "discounts": Unsupported(),
            "unit_amount_decimal": Unsupported("Pass amount."),
            "tax_rates": Unsupported(),
        }
    )
    get_params = Schema({**lists.LIST_FIELDS, "customer": ID, "invoice": ID, "pending": Boolean()})

    def post(self, ctx, params):
        customer = _customer(ctx, params.pop("customer"))
        options = {
            "description": params.get("description", ""),
            "metadata": checked_metadata(params.get("metadata") or {}),
        }
        if params.get("price"):
            options["price"] = get_or_404(ctx, Price, params["price"], "price", param="price")
        if params.get("subscription"):
            options["subscription"] = get_or_404(
                ctx, Subscription, params["subscription"], "subscription", param="subscription"
            )
            # SPEC R-CON-5: adding to what a subscription bills changes it.
            connect.check_platform_may_change(
                options["subscription"], acting_platform(ctx), param="subscription"
            )
        for name in ("amount", "quantity"):
            if params.get(name) is not None:
                options[name] = params[name]
        if params.get("currency"):
            options["currency"] = params["currency"].lower()
        return services.create_invoice_item(customer, request_id=ctx.request_id, **options)

    def get(self, ctx, params):
        items = scoped(ctx, InvoiceItem).select_related("customer", "price__product")
        if params.get("customer"):
            items = items.filter(customer_id=params["customer"])
        if params.get("invoice"):
            items = items.filter(invoice_id=params["invoice"])
        if "pending" in params:
            items = items.filter(invoice__isnull=params["pending"])
        return lists.page(
            items,
            params,
            url="/v1/invoiceitems",
            object_label="invoiceitem",
            cursor_queryset=scoped(ctx, InvoiceItem),
        )


class InvoiceItemView(ApiView):
    """Retrieve an invoice item, or delete a pending one."""

    get_params = Schema()
    delete_params = Schema()
    param_aliases = {"invoiceitem": None}

    def get(self, ctx, params, invoiceitem_id):
        return get_or_404(ctx, InvoiceItem, invoiceitem_id, "invoiceitem")

    def delete(self, ctx, params, invoiceitem_id):
        item = get_or_404(ctx, InvoiceItem, invoiceitem_id, "invoiceitem")
        services.delete_invoice_item(item, request_id=ctx.request_id)
        return deleted(item.id, "invoiceitem")
