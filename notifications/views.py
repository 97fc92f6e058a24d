"""Dashboard pages: Settings → Emails (with a preview of every email), the Emails log, one
email with its rendered body and Resend (SPEC R-MAIL-1, R-MAIL-9, R-MAIL-10).

Everyone in the account may look; owners change the settings; owners, finance and support
may resend. Every query goes through `scope()`: one account, one mode.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from billing.clocks import now_for
from billing.models import Customer
from billing.services.invoices import recovery_settings
from billing.views.base import DetailView, ListView, MemberRequiredMixin, get_scoped_or_404
from notifications.choices import EmailStatus
from notifications.forms import EmailLogFilterForm, EmailSettingsForm
from notifications.models import EmailLog, HostedLink
from notifications.previews import preview_all
from notifications.services import sending
from notifications.services.links import deactivate_links, inactive_reason
from notifications.services.settings import EDITABLE_FIELDS, email_settings

# The customer page shows this many recent emails and links to the filtered log for the rest.
CUSTOMER_EMAILS_LIMIT = 10


class CustomerEmails(list):
    """The customer's latest emails, carrying what the "Emails" card also shows: how many of
    the customer's hosted links work now."""

    active_links = 0


def active_link_count(customer) -> int:
    """How many of the customer's hosted links work now (every R-MAIL-6 condition applied)."""
    now = now_for(customer)
    links = HostedLink.objects.filter(
        customer=customer, deactivated_at__isnull=True, expires_at__gt=now
    ).select_related("subscription__customer")
    return sum(1 for link in links if inactive_reason(link, now=now) is None)


def customer_emails(request, customer):
    """The customer's latest emails, for the customer detail page (R-MAIL-9)."""
    emails = CustomerEmails(
        EmailLog.objects.filter(
            account=request.account, livemode=request.livemode, customer=customer
        ).order_by("-created", "-pk")[:CUSTOMER_EMAILS_LIMIT]
    )
    emails.active_links = active_link_count(customer)
    return emails


class EmailSettingsView(MemberRequiredMixin, View):
    """Settings → Emails, for the current account and mode."""

    def get(self, request):
        return self.render_page(request)

    def post(self, request):
        if not request.membership.can_manage_account:
            raise PermissionDenied("Only owners can change the email settings.")
        current = email_settings(request.account, request.livemode)
        if current.pk is None:
            current.account = request.account
        form = EmailSettingsForm(request.POST, instance=current, livemode=request.livemode)
        if not form.is_valid():
            return self.render_page(request, form=form, status=400)
        form.save()
        messages.success(request, "Email settings saved.")
        return redirect("notifications:settings")

    def render_page(self, request, *, form=None, status=200):
        current = email_settings(request.account, request.livemode)
        can_manage = request.membership.can_manage_account
        if form is None and can_manage:
            form = EmailSettingsForm(instance=current, livemode=request.livemode)
        shown = [
            (current._meta.get_field(name).verbose_name, getattr(current, name), name)
            for name in EDITABLE_FIELDS
            if not (request.livemode and name == "verified_domain")
        ]
        context = {
            "current": current,
            "form": form,
            "can_manage": can_manage,
            "shown": shown,
            "renewal_days": recovery_settings(
                request.account, request.livemode
            ).upcoming_renewal_days,
            "previews": preview_all(request.account, current),
        }
        return render(request, "notifications/settings.html", context, status=status)


class EmailListView(ListView):
    """Every email of the account and mode, newest first, filtered by kind, status, customer
    and date (keyset-paginated)."""

    model = EmailLog
    filter_form_class = EmailLogFilterForm
    template_name = "notifications/email_list.html"
    table_template = "notifications/_emails_table.html"
    title = "Emails"

    def decorate(self, queryset):
        return queryset.select_related("customer").defer("text_body", "html_body")


class EmailDetailView(DetailView):
    """One email: its rendered body (HTML in a sandboxed frame), status, cause and resends."""

    model = EmailLog
    template_name = "notifications/email_detail.html"

    def get_queryset(self):
        return super().get_queryset().select_related("customer", "event", "resent_from")

    def get_context(self, entry):
        return {
            "entry": entry,
            "can_resend": bool(self.request.membership.can_write and entry.to),
            "resends": list(self.scope(EmailLog).filter(resent_from=entry).order_by("-created")),
        }


class EmailResendView(MemberRequiredMixin, View):
    """Send a logged email again (owners, finance, support)."""

    permission = "can_write"

    def post(self, request, pk):
        entry = get_scoped_or_404(request, EmailLog.objects.select_related("account"), pk=pk)
        again = sending.resend(entry)
        if again.status == EmailStatus.SUPPRESSED:
            messages.warning(request, f"Not sent: {again.reason}")
        else:
            messages.success(request, f"Email queued again to {again.to}.")
        return redirect("notifications:email_detail", pk=again.pk)


class DeactivateLinksView(MemberRequiredMixin, View):
    """Stop every hosted link of a customer at once (owners and finance), e.g. when an email
    went to the wrong person."""

    permission = "can_manage_billing"

    def get(self, request, pk):
        customer = get_scoped_or_404(request, Customer.objects.all(), pk=pk)
        count = active_link_count(customer)
        context = {
            "object": customer,
            "noun": "customer",
            "detail_url": reverse("dashboard:customer_detail", kwargs={"pk": customer.pk}),
            "action": {
                "question": "Deactivate this customer's links?",
                "confirm": "Deactivate links",
                "danger": True,
            },
            "explanation": (
                f"The {count} working payment-update and subscription-management "
                f"link{'s' if count != 1 else ''} sent to this customer by email stop working at "
                "once, for good. Emails sent from now on carry new links."
            ),
        }
        return render(request, "dashboard/confirm.html", context)

    def post(self, request, pk):
        customer = get_scoped_or_404(request, Customer.objects.all(), pk=pk)
        count = deactivate_links(customer=customer, reason="deactivated from the dashboard")
        if count:
            plural = "s" if count != 1 else ""
            messages.success(request, f"{count} link{plural} deactivated: they no longer work.")
        else:
            messages.info(request, "This customer had no links to deactivate.")
        return redirect("dashboard:customer_detail", pk=customer.pk)
