"""The vocabularies of automations: triggers, filters, actions and the states of a run."""

from django.db import models


class Trigger(models.TextChoices):
    """What starts an automation (SPEC R-AUTO-2)."""

    INVOICE_DUE_DATE_APPROACHING = "invoice_due_date_approaching", "Invoice due date approaching"
    INVOICE_FINALIZED = "invoice_finalized", "Invoice finalized"
    INVOICE_OVERDUE = "invoice_overdue", "Invoice overdue"
    SUBSCRIPTION_CANCELED = "subscription_canceled", "Subscription canceled"
    SUBSCRIPTION_PAYMENT_FAILED = "subscription_payment_failed", "Subscription payment fails"
    CUSTOMER_CREATED = "customer_created", "Customer created (beta)"


class ConditionKind(models.TextChoices):
    """A filter an automation may put on its trigger (SPEC R-AUTO-3)."""

    CUSTOMER_METADATA = "customer_metadata", "Customer metadata"
    INVOICE_METADATA = "invoice_metadata", "Invoice metadata"
    INVOICE_AMOUNT = "invoice_amount", "Invoice amount"
    SUBSCRIPTION_INTERVAL = "subscription_interval", "Subscription interval"
    PRODUCTS = "products", "Products"


class ActionKind(models.TextChoices):
    """Something a run does at its step's time (SPEC R-AUTO-4)."""

    SET_RETRY_POLICY = "set_retry_policy", "Set retry policy"
    MARK_SUBSCRIPTION_UNPAID = "mark_subscription_unpaid", "Mark subscription unpaid"
    CANCEL_SUBSCRIPTION = "cancel_subscription", "Cancel subscription"
    MARK_INVOICE_UNCOLLECTIBLE = "mark_invoice_uncollectible", "Mark invoice uncollectible"
    EMAIL_TEAM_MEMBER = "email_team_member", "Email a team member"
    SEND_CANCELLATION_CONFIRMATION = (
        "send_cancellation_confirmation",
        "Send cancellation confirmation email",
    )
    SEND_WILL_BE_DUE_WEBHOOK = "send_will_be_due_webhook", "Send invoice.will_be_due webhook"
    CREATE_SUBSCRIPTION = "create_subscription", "Create subscription (beta)"
    CREDIT_CUSTOMER_BALANCE = "credit_customer_balance", "Credit customer balance (beta)"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"
    FAILED = "failed", "Failed"


class StepStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class EndReason(models.TextChoices):
    """Why a run stopped (shown on the run)."""

    ALL_STEPS_DONE = "all_steps_done", "All steps done"
    INVOICE_PAID = "invoice_paid", "Invoice paid"
    INVOICE_VOIDED = "invoice_voided", "Invoice voided"
    AUTO_ADVANCE_OFF = "auto_advance_off", "Automatic collection turned off"
    SUBSCRIPTION_CANCELED = "subscription_canceled", "Subscription canceled by the run"
    CANCELED_BY_USER = "canceled_by_user", "Canceled from the dashboard"
    AUTOMATION_DISABLED = "automation_disabled", "Automation disabled, runs canceled"
    TARGET_GONE = "target_gone", "The object no longer exists"


class DisableRuns(models.TextChoices):
    """What disabling an automation does to its runs in progress (SPEC R-AUTO-7)."""

    FINISH = "finish", "Let runs in progress finish"
    CANCEL = "cancel", "Cancel runs in progress now"
