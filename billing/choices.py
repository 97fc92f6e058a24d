"""Every status and enumerated value of the billing objects, with Stripe's own spellings."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    FINANCE = "finance", "Finance"
    SUPPORT = "support", "Support"
    READ_ONLY = "read_only", "Read-only"


class AccountType(models.TextChoices):
    PLATFORM = "platform", "Platform"
    CONNECTED = "connected", "Connected"


class InvoiceNumbering(models.TextChoices):
    """How invoices are numbered (Stripe's two schemes). The full number is unique in the
    account either way."""

    ACCOUNT = "account", "Sequentially across the account"
    CUSTOMER = "customer", "Sequentially for each customer"


class PaymentMethodType(models.TextChoices):
    CARD = "card", "Card"


class CardBrand(models.TextChoices):
    VISA = "visa", "Visa"
    MASTERCARD = "mastercard", "Mastercard"
    AMEX = "amex", "American Express"
    DISCOVER = "discover", "Discover"
    UNKNOWN = "unknown", "Unknown"


class TestCardBehavior(models.TextChoices):
    """What the test gateway does with a card (SPEC R-INV-10)."""

    SUCCEED = "succeed", "Succeeds"
    DECLINE = "generic_decline", "Declined"
    INSUFFICIENT_FUNDS = "insufficient_funds", "Insufficient funds"
    AUTHENTICATION_REQUIRED = "authentication_required", "Requires authentication"
    ATTACH_THEN_FAIL = "attach_then_fail", "Attaches, every charge fails"


class PriceType(models.TextChoices):
    ONE_TIME = "one_time", "One-off"
    RECURRING = "recurring", "Recurring"


class Interval(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    YEAR = "year", "Year"


class UsageType(models.TextChoices):
    LICENSED = "licensed", "Licensed"
    METERED = "metered", "Metered"


class CouponDuration(models.TextChoices):
    ONCE = "once", "Once"
    REPEATING = "repeating", "Repeating"
    FOREVER = "forever", "Forever"


class SubscriptionStatus(models.TextChoices):
    """SPEC R-SUB-1."""

    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete expired"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"


class CollectionMethod(models.TextChoices):
    """SPEC R-SUB-9."""

    CHARGE_AUTOMATICALLY = "charge_automatically", "Charge automatically"
    SEND_INVOICE = "send_invoice", "Send invoice"


class MissingPaymentMethodBehavior(models.TextChoices):
    """SPEC R-TRIAL-6."""

    CANCEL = "cancel", "Cancel"
    PAUSE = "pause", "Pause"
    CREATE_INVOICE = "create_invoice", "Create invoice"


class PauseCollectionBehavior(models.TextChoices):
    KEEP_AS_DRAFT = "keep_as_draft", "Keep as draft"
    MARK_UNCOLLECTIBLE = "mark_uncollectible", "Mark uncollectible"
    VOID = "void", "Void"


class InvoiceStatus(models.TextChoices):
    """SPEC R-INV-1."""

    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


class BillingReason(models.TextChoices):
    """SPEC R-INV-1."""

    SUBSCRIPTION_CREATE = "subscription_create", "Subscription creation"
    SUBSCRIPTION_CYCLE = "subscription_cycle", "Subscription cycle"
    SUBSCRIPTION_UPDATE = "subscription_update", "Subscription update"
    MANUAL = "manual", "Manual"


class AutomaticTaxStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    REQUIRES_LOCATION_INPUTS = "requires_location_inputs", "Requires location inputs"


class LineItemType(models.TextChoices):
    SUBSCRIPTION = "subscription", "Subscription"
    INVOICEITEM = "invoiceitem", "Invoice item"


class PaymentIntentStatus(models.TextChoices):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method", "Requires payment method"
    REQUIRES_CONFIRMATION = "requires_confirmation", "Requires confirmation"
    REQUIRES_ACTION = "requires_action", "Requires action"
    PROCESSING = "processing", "Processing"
    REQUIRES_CAPTURE = "requires_capture", "Requires capture"
    CANCELED = "canceled", "Canceled"
    SUCCEEDED = "succeeded", "Succeeded"


class BalanceTransactionType(models.TextChoices):
    ADJUSTMENT = "adjustment", "Adjustment"
    APPLIED_TO_INVOICE = "applied_to_invoice", "Applied to invoice"
    CREDIT_NOTE = "credit_note", "Credit note"
    INITIAL = "initial", "Initial"
    INVOICE_OVERPAID = "invoice_overpaid", "Invoice overpaid"
    INVOICE_TOO_LARGE = "invoice_too_large", "Invoice too large"
    INVOICE_TOO_SMALL = "invoice_too_small", "Invoice too small"
    UNAPPLIED_FROM_INVOICE = "unapplied_from_invoice", "Unapplied from invoice"


class TestClockStatus(models.TextChoices):
    READY = "ready", "Ready"
    ADVANCING = "advancing", "Advancing"
    INTERNAL_FAILURE = "internal_failure", "Internal failure"


class JobStatus(models.TextChoices):
    """Where a due job is: waiting for its time, handed to a worker, or finished."""

    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class RetryMode(models.TextChoices):
    SMART = "smart", "Smart retries (recommended)"
    CUSTOM = "custom", "Custom schedule"


class AfterRetriesSubscription(models.TextChoices):
    """What happens to the subscription after the last failed retry (SPEC R-SUB-4)."""

    CANCEL = "cancel", "Cancel the subscription"
    UNPAID = "unpaid", "Mark the subscription as unpaid"
    PAST_DUE = "past_due", "Leave the subscription past due"


class AfterRetriesInvoice(models.TextChoices):
    """What happens to the invoice after the last failed retry (SPEC R-SUB-4)."""

    OPEN = "open", "Leave the invoice open"
    UNCOLLECTIBLE = "uncollectible", "Mark the invoice as uncollectible"


class PaymentBehavior(models.TextChoices):
    ALLOW_INCOMPLETE = "allow_incomplete", "Allow incomplete"
    DEFAULT_INCOMPLETE = "default_incomplete", "Default incomplete"
    ERROR_IF_INCOMPLETE = "error_if_incomplete", "Error if incomplete"


class ProrationBehavior(models.TextChoices):
    CREATE_PRORATIONS = "create_prorations", "Create prorations"
    NONE = "none", "None"
    ALWAYS_INVOICE = "always_invoice", "Always invoice"


class WebhookEndpointStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class LedgerEntryType(models.TextChoices):
    """What moved money in or out of an account's balance (Stripe's balance transaction types)."""

    CHARGE = "charge", "Charge"
    PAYMENT = "payment", "Payment (transfer received)"
    TRANSFER = "transfer", "Transfer"
    APPLICATION_FEE = "application_fee", "Application fee"
