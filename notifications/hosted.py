"""The hosted customer pages reached from emails (SPEC R-MAIL-5, R-MAIL-6, R-MAIL-7, R-TRIAL-8).

`/pay/<token>/`: the customer enters a card; it becomes the subscription's default payment
method and pays the subscription's open invoices at once (with the 3-D Secure step when the
card asks for it); without open invoices it is used at the next attempt. A subscription paused
at the end of a trial without a payment method is resumed and its first invoice paid.
`/manage/<token>/`: cancel at the end of the period, undo that, resume a paused subscription.

Every request goes through `hosted_page`: rate limits per client address and per link, then
`resolve_link` (the only way in). Unknown, expired, used-up and deactivated links all get the
same 404 page, which names no customer or account. Responses are never cached, never framed and
send no referrer, so the token in the path does not leak to the logo's host or to the browser's
history of another user. Our code never logs the token (nor asks Django to: see `_secure`).

What a declined card leaves behind, as Stripe does: the failed attempt stays recorded on the
invoice (attempt count, `invoice.payment_failed`), but the card is detached again and never
becomes a default, so the next automatic attempt uses the method that was there before.
"""

import functools
import logging
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt

from billing.choices import CollectionMethod, InvoiceStatus, PaymentIntentStatus, SubscriptionStatus
from billing.models import Invoice, PaymentIntent
from billing.services.customers import add_card, detach_payment_method
from billing.services.invoices import CardError, confirm_payment_intent, pay_invoice
from billing.services.subscriptions import (
    cancel_subscription,
    resume_subscription,
    update_subscription,
)
from notifications import ratelimit
from notifications.choices import LinkPurpose
from notifications.forms import CardForm, ManageForm
from notifications.services.links import hash_token, issue_link, resolve_link
from notifications.services.rendering import brand_context, format_date, zone_for

logger = logging.getLogger(__name__)

# Requests per window (seconds). Every hosted request counts against its client address and
# its link; card submissions count again, more strictly, so a link cannot test stolen cards.
ADDRESS_LIMIT = (60, 600)
LINK_LIMIT = (30, 600)
CARD_LIMIT = (8, 3600)

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
DEFAULT_COLOR = "#4f46e5"
# Subscriptions a customer may ask to cancel at the end of the period.
CANCELLABLE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)
DONE_MESSAGES = {
    "cancel": "Your subscription will end at the end of the current period.",
    "undo_cancel": "Your subscription will continue.",
    "resume": "Your subscription has been resumed.",
    "resume_pending": "Your subscription resumes once its invoice is paid.",
}


def _limit(name: str) -> tuple[int, int]:
    """A (limit, window) pair, overridable in settings as RELANCE_HOSTED_<NAME>."""
    default = globals()[f"{name}_LIMIT"]
    return tuple(getattr(settings, f"RELANCE_HOSTED_{name}_LIMIT", default))


def _allowed(scope: str, key: str, name: str) -> bool:
    limit, window = _limit(name)
    return ratelimit.allow(scope, key, limit=limit, window=window)


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind `RELANCE_TRUSTED_PROXIES` proxies the
    X-Forwarded-For entry the nearest of them recorded (entries further left are the client's
    to write, so they are never trusted)."""
    proxies = getattr(settings, "RELANCE_TRUSTED_PROXIES", 0)
    if proxies:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _secure(response, nonce: str = ""):
    """The headers every hosted response carries."""
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store, max-age=0"
    response["X-Frame-Options"] = "DENY"
    response["X-Robots-Tag"] = "noindex, nofollow"
    style = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src https: data:; "
        f"style-src {style}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    # Django logs 4xx responses with their path ("Not Found: /pay/<token>/"); the path holds
    # the token, so the hosted pages tell Django the response has been dealt with.
    response._has_been_logged = True
    return response


def require_http_methods(allowed: list[str]):
    """Django's decorator of that name, whose 405 also carries the hosted headers (and, like
    every hosted response, keeps the token-holding path out of the request log)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in allowed:
                return _secure(HttpResponseNotAllowed(allowed))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _render(request, template: str, context: dict, *, status: int = 200):
    nonce = secrets.token_urlsafe(16)
    response = render(request, template, {**context, "csp_nonce": nonce}, status=status)
    return _secure(response, nonce)


def invalid_link(request):
    """The one page for every link that does not work: it says nothing about whose it was."""
    return _render(request, "hosted/invalid.html", {}, status=404)


def too_many_requests(request):
    response = _render(request, "hosted/too_many.html", {}, status=429)
    response["Retry-After"] = str(_limit("ADDRESS")[1])
    return response


class HostedCsrfMiddleware(CsrfViewMiddleware):
    """Django's CSRF protection (a secret cookie and the form's masked token) for pages that
    send no referrer.

    With `Referrer-Policy: no-referrer`, browsers send `Origin: null` with a form's POST and no
    `Referer` at all, which Django's origin and (over HTTPS) referer checks refuse. Those checks
    are a second line of defence; the token check stays. A real, foreign Origin is still
    refused. Failures get a hosted page, and are logged without the path (it holds the token).
    """

    def _origin_verified(self, request):
        if request.META.get("HTTP_ORIGIN") == "null":
            return True
        return super()._origin_verified(request)

    def _check_referer(self, request):
        # Our own pages forbid the browser to send one: there is nothing to check.
        return None

    def _reject(self, request, reason):
        logger.warning("Hosted page: CSRF check failed (%s)", reason)
        return _render(request, "hosted/forbidden.html", {}, status=403)


hosted_csrf = decorator_from_middleware(HostedCsrfMiddleware)


def hosted_page(purpose: str):
    """CSRF, rate limits, then the link (or the invalid-link page), then the view with it."""

    def decorator(view):
        @hosted_csrf
        def checked(request, token, *args, **kwargs):
            link = resolve_link(token, purpose=purpose)
            if link is None:
                return invalid_link(request)
            return view(request, link, token, *args, **kwargs)

        @csrf_exempt  # the global middleware would refuse `Origin: null`; hosted_csrf checks
        @functools.wraps(view)
        def wrapped(request, token, *args, **kwargs):
            if not (
                _allowed("hosted-address", client_address(request), "ADDRESS")
                and _allowed("hosted-link", hash_token(token), "LINK")
            ):
                return too_many_requests(request)
            return checked(request, token, *args, **kwargs)

        return wrapped

    return decorator


# ---- what the pages show ------------------------------------------------------------------


def _brand(link) -> dict:
    """The branding of the account the customer deals with: the connected account for a
    subscription `on_behalf_of` it (SPEC R-CON-6), else the link's account (R-MAIL-10)."""
    subscription = link.subscription
    account = subscription.on_behalf_of if subscription.on_behalf_of_id else link.account
    brand = brand_context(account)
    if not HEX_COLOR.match(brand["brand_color"] or ""):
        brand["brand_color"] = DEFAULT_COLOR
    if not (brand["brand_logo_url"] or "").startswith("https://"):
        brand["brand_logo_url"] = ""
    return brand


def _open_invoices(subscription) -> list[Invoice]:
    return list(
        Invoice.objects.filter(subscription=subscription, status=InvoiceStatus.OPEN)
        .select_related("payment_intent__payment_method")
        .order_by("created", "pk")
    )


def _current_card(subscription):
    """The card the next automatic attempt charges (R-TRIAL-7's order, cards only)."""
    return (
        subscription.default_payment_method
        or subscription.customer.invoice_settings_default_payment_method
    )


def _pending_confirmation(subscription, invoices=None) -> PaymentIntent | None:
    """An open invoice's payment waiting for the customer's authentication (3-D Secure)."""
    for invoice in invoices if invoices is not None else _open_invoices(subscription):
        intent = invoice.payment_intent
        if (
            intent is not None
            and intent.status == PaymentIntentStatus.REQUIRES_ACTION
            and intent.payment_method_id
            and intent.payment_method.customer_id == subscription.customer_id
        ):
            return intent
    return None


def _context(link, **extra) -> dict:
    subscription = link.subscription
    subscription.refresh_from_db()
    customer = subscription.customer
    customer.refresh_from_db()
    zone = zone_for(customer, link.account)
    invoices = _open_invoices(subscription)
    items = list(subscription.items.select_related("price__product").order_by("created", "pk"))
    return {
        **_brand(link),
        "subscription": subscription,
        "customer_name": customer.name,
        "items": items,
        "invoices": invoices,
        "amount_due": sum(invoice.amount_remaining for invoice in invoices),
        "currency": subscription.currency,
        "card": _current_card(subscription),
        "pending": _pending_confirmation(subscription, invoices),
        "period_end": format_date(subscription.current_period_end, zone),
        "trial_end": format_date(subscription.trial_end, zone),
        "cancel_at": format_date(subscription.cancel_at, zone),
        "livemode": link.livemode,
        **extra,
    }


# ---- /pay/<token>/ ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@hosted_page(LinkPurpose.PAYMENT_UPDATE)
def pay(request, link, token):
    """The payment-update page (SPEC R-MAIL-5)."""
    if request.method == "GET":
        return _render(request, "hosted/pay.html", _context(link, form=CardForm(), token=token))
    if not _allowed("hosted-card", link.token_hash, "CARD"):
        return too_many_requests(request)
    form = CardForm(request.POST)
    if form.is_valid():
        try:
            card = add_card(link.customer, card=form.card())
        except ValidationError as error:
            form.add_card_errors(error)
        else:
            return _collect(request, link, token, card, entered=True)
    context = _context(link, form=form, token=token)
    return _render(request, "hosted/pay.html", context, status=400)


@require_http_methods(["GET", "POST"])
@hosted_page(LinkPurpose.PAYMENT_UPDATE)
def authenticate(request, link, token):
    """The 3-D Secure step: the test gateway's stand-in for the bank's challenge (R-INV-5)."""
    subscription = link.subscription
    intent = _pending_confirmation(subscription)
    if intent is None or (
        request.method == "POST" and request.POST.get("payment_intent") != intent.pk
    ):
        # Nothing (or no longer this payment) to confirm: back to the page, which says why.
        return _secure(redirect("notifications:hosted_pay", token=token))
    card = intent.payment_method
    if request.method == "GET":
        return _authentication_step(request, link, token, intent)
    if request.POST.get("outcome") != "complete":
        # The customer failed (or gave up) the challenge: nothing was charged. A card entered
        # on this page that never paid is not kept (see the module's docstring).
        if card.pk != getattr(_current_card(subscription), "pk", None):
            detach_payment_method(card)
        message = "Authentication failed: your card was not charged. Try again or use another card."
        return _render(
            request,
            "hosted/pay.html",
            _context(link, form=CardForm(), token=token, payment_error=message),
            status=402,
        )
    try:
        confirm_payment_intent(intent, payment_method=card)
    except CardError as error:
        drop = card.pk != getattr(_current_card(subscription), "pk", None)
        return _declined(request, link, token, card, error, drop=drop)
    paid = [Invoice.objects.get(pk=intent.invoice_id)] if intent.invoice_id else []
    return _collect(request, link, token, card, entered=False, paid=paid)


def _authentication_step(request, link, token, intent):
    context = _context(link, token=token, intent=intent, card_used=intent.payment_method)
    return _render(request, "hosted/authenticate.html", context)


def _declined(request, link, token, card, error: CardError, *, drop: bool):
    """A refused card: the attempt stays recorded on the invoice; a card entered on the page
    (`drop`) is not kept."""
    card.refresh_from_db()
    if drop and card.customer_id:
        # Detaching also drops it as the subscription's default (set before a resume).
        detach_payment_method(card)
    message = error.error.get("message") or "Your card was declined."
    context = _context(link, form=CardForm(), token=token, payment_error=message)
    return _render(request, "hosted/pay.html", context, status=402)


def _make_default(subscription, card) -> None:
    """Make `card` the subscription's default, unless the next attempt charges it already."""
    subscription.refresh_from_db()
    if getattr(_current_card(subscription), "pk", None) != card.pk:
        update_subscription(subscription, default_payment_method=card)


def _collect(request, link, token, card, *, entered: bool, paid=()):
    """Pay the open invoices with `card`, oldest first, then make it the default.

    A paused subscription without open invoices (a trial that ended without a payment method)
    is resumed with a new cycle; the resume invoice is charged at once by the engine.
    """
    subscription = link.subscription
    subscription.refresh_from_db()
    paid = list(paid)
    charged_by_resume = set()
    if subscription.status == SubscriptionStatus.PAUSED and not _open_invoices(subscription):
        # The resume invoice is charged at once with the default: this card, set first.
        _make_default(subscription, card)
        resumed = resume_subscription(subscription, billing_cycle_anchor="now")
        invoice = resumed.latest_invoice
        if invoice is not None and invoice.status == InvoiceStatus.PAID:
            paid.append(invoice)
        charged_by_resume = {invoice.pk for invoice in _open_invoices(subscription)}
    for invoice in _open_invoices(subscription):
        intent = invoice.payment_intent
        if intent is not None and intent.payment_method_id == card.pk:
            if intent.status == PaymentIntentStatus.REQUIRES_ACTION:
                return _authentication_step(request, link, token, intent)
            if invoice.pk in charged_by_resume:
                # The engine's charge of the resume invoice was just declined: do not try twice.
                error = CardError(intent.last_payment_error or {})
                return _declined(request, link, token, card, error, drop=entered)
        try:
            invoice = pay_invoice(invoice, payment_method=card)
        except CardError as error:
            # Judge by the intent as stored: `pay_invoice` may report a retried invoice's
            # earlier error (or a decline for a charge that now awaits authentication).
            intent = PaymentIntent.objects.get(pk=invoice.payment_intent_id)
            if intent.status == PaymentIntentStatus.REQUIRES_ACTION:
                return _authentication_step(request, link, token, intent)
            if intent.last_payment_error:
                error = CardError(intent.last_payment_error)
            if paid:
                # The card paid already; keep it and report what is still due.
                _make_default(subscription, card)
            drop = entered and not paid
            return _declined(request, link, token, card, error, drop=drop)
        if invoice.status != InvoiceStatus.PAID:
            intent = PaymentIntent.objects.get(pk=invoice.payment_intent_id)
            return _authentication_step(request, link, token, intent)
        paid.append(invoice)
    _make_default(subscription, card)
    context = _context(link, token=token, paid=paid, new_card=card, entered=entered)
    return _render(request, "hosted/pay_done.html", context)


# ---- /manage/<token>/ -------------------------------------------------------------------


def _actions(subscription) -> list[str]:
    """What the customer may do to the subscription now."""
    actions = []
    if subscription.status == SubscriptionStatus.PAUSED:
        actions.append("resume")
    elif subscription.cancel_at_period_end or subscription.cancel_at:
        actions.append("undo_cancel")
    elif subscription.status in CANCELLABLE:
        actions.append("cancel")
    return actions


def _can_pay(subscription) -> bool:
    """Whether the management page offers the payment page: something is due and the
    subscription is charged automatically (R-MAIL-4: no payment link for send_invoice)."""
    return (
        subscription.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
        and Invoice.objects.filter(subscription=subscription, status=InvoiceStatus.OPEN).exists()
    )


@require_http_methods(["GET", "POST"])
@hosted_page(LinkPurpose.MANAGE)
def manage(request, link, token):
    """The subscription-management page (SPEC R-MAIL-7, R-TRIAL-8)."""
    subscription = link.subscription
    actions = _actions(subscription)
    done = request.GET.get("done", "")
    if request.method == "GET":
        context = _context(
            link,
            token=token,
            actions=actions,
            can_pay=_can_pay(subscription),
            done_message=DONE_MESSAGES.get(done, ""),
        )
        return _render(request, "hosted/manage.html", context)
    form = ManageForm(request.POST)
    if not form.is_valid() or form.cleaned_data["action"] not in actions:
        context = _context(
            link,
            token=token,
            actions=actions,
            action_error="This change is not available for your subscription any more.",
        )
        return _render(request, "hosted/manage.html", context, status=400)
    action = form.cleaned_data["action"]
    anchor = form.cleaned_data["billing_cycle_anchor"] or "now"
    if not form.cleaned_data["confirm"]:
        context = _context(link, token=token, action=action, anchor=anchor)
        if action == "resume":
            context["anchor_choices"] = form.fields["billing_cycle_anchor"].choices
        return _render(request, "hosted/manage_confirm.html", context)
    try:
        done = _apply(subscription, action, anchor)
    except ValidationError as error:
        context = _context(
            link, token=token, actions=actions, action_error=" ".join(error.messages)
        )
        return _render(request, "hosted/manage.html", context, status=400)
    url = reverse("notifications:hosted_manage", kwargs={"token": token})
    return _secure(redirect(f"{url}?done={done}"))


def _apply(subscription, action: str, anchor: str) -> str:
    """Run one confirmed action through the billing services; the key of the message to show."""
    if action == "cancel":
        cancel_subscription(subscription, at_period_end=True)
        return "cancel"
    if action == "undo_cancel":
        if subscription.cancel_at_period_end:
            update_subscription(subscription, cancel_at_period_end=False)
        else:
            update_subscription(subscription, cancel_at=None)
        return "undo_cancel"
    if action == "resume":
        resumed = resume_subscription(subscription, billing_cycle_anchor=anchor)
        return "resume" if resumed.status != SubscriptionStatus.PAUSED else "resume_pending"
    raise ValueError(f"unknown action {action!r}")


@require_http_methods(["POST"])
@hosted_page(LinkPurpose.MANAGE)
def manage_pay(request, link, token):
    """From the management page to the payment page: a fresh payment link for what is due."""
    subscription = link.subscription
    if not _can_pay(subscription):
        return _secure(redirect("notifications:hosted_manage", token=token))
    _, url = issue_link(subscription, LinkPurpose.PAYMENT_UPDATE)
    new_token = url.rstrip("/").rsplit("/", 1)[1]
    return _secure(redirect("notifications:hosted_pay", token=new_token))
