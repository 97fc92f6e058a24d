"""What every dashboard page shares: sign-in, a membership, and account + mode scoping.

All dashboard data goes through `scope()` (or the mixins that call it), so a member of one
account never sees another's objects and test-mode pages never show live data (SPEC R-CORE-3).
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views import View

from billing.models.base import in_mode
from billing.pagination import InvalidCursor, keyset_page


def scope(request, model_or_queryset, *, modes=True) -> QuerySet:
    """Objects of the request's account, and of its mode unless `modes=False` (account-level)."""
    if isinstance(model_or_queryset, type) and issubclass(model_or_queryset, Model):
        queryset = model_or_queryset._default_manager.all()
    else:
        queryset = model_or_queryset
    queryset = queryset.filter(account=request.account)
    if modes:
        queryset = queryset.filter(in_mode(request.livemode))
    return queryset


def get_scoped_or_404(request, model_or_queryset, **lookup):
    """One object of the request's account and mode; another account's or mode's is a 404."""
    obj = scope(request, model_or_queryset).filter(**lookup).first()
    if obj is None:
        raise Http404("No such object in this account and mode.")
    return obj


class MemberRequiredMixin(AccessMixin):
    """Signed-in users with a membership; others go to sign-in or see the no-access page."""

    # The Membership property a view needs beyond being a member (e.g. "can_manage_account").
    permission = None
    # Whether a platform member working inside a connected account (an unsaved membership, see
    # billing.middleware.acting_membership) may use the view. The account's own credentials
    # are not the platform's: an API key issued there would keep working after the account
    # disconnects, when the platform must have lost access (SPEC R-CON-7).
    platform_may_act = True

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.membership is None:
            return render(request, "dashboard/no_access.html", status=403)
        if self.permission and not getattr(request.membership, self.permission):
            raise PermissionDenied("Your role does not allow this.")
        if not self.platform_may_act and request.membership.pk is None:
            raise PermissionDenied("Only the connected account's own team may do this.")
        return super().dispatch(request, *args, **kwargs)

    def scope(self, model_or_queryset, **kwargs):
        return scope(self.request, model_or_queryset, **kwargs)


class DetailView(MemberRequiredMixin, View):
    """One object of the account and mode, by id, with whatever related data `get_context` adds."""

    model = None
    template_name = None

    def get_queryset(self):
        return self.scope(self.model)

    def get(self, request, pk):
        obj = get_scoped_or_404(request, self.get_queryset(), pk=pk)
        context = {"object": obj, **self.get_context(obj)}
        return render(request, self.template_name, context)

    def get_context(self, obj) -> dict:
        return {}


class ListView(MemberRequiredMixin, View):
    """A filterable, searchable, keyset-paginated list (newest first).

    Subclasses declare the model, the filter form, the table partial and the page title. An htmx
    request aimed at the results swaps only the table partial; without JS the filter form is a
    plain GET form and the same URL renders the whole page.
    """

    model = None
    filter_form_class = None
    template_name = "dashboard/object_list.html"
    table_template = None
    title = ""
    results_id = "results"

    def get_queryset(self):
        return self.scope(self.model)

    def decorate(self, queryset):
        """Add the select_related/prefetch_related the table needs (a fixed number of queries)."""
        return queryset

    def get(self, request):
        base = self.get_queryset()
        form = self.filter_form_class(request.GET or None)
        queryset = self.decorate(form.filter(base))
        page = self.paginate(queryset, base)
        context = {
            "title": self.title,
            "form": form,
            "page": page,
            "table_template": self.table_template,
            "results_id": self.results_id,
            "filter_query": _filter_query(request.GET),
            **self.get_context(),
        }
        return render_filtered(
            request,
            context,
            page_template=self.template_name,
            results_template=self.table_template,
            results_id=self.results_id,
        )

    def paginate(self, queryset, base):
        after = self.request.GET.get("after") or None
        before = self.request.GET.get("before") or None
        if after and before:
            before = None
        try:
            return keyset_page(
                queryset,
                after=after,
                before=before,
                limit=settings.DASHBOARD_PAGE_SIZE,
                cursor_queryset=base,
            )
        except InvalidCursor:
            # A stale or foreign cursor: start from the newest instead of failing.
            return keyset_page(queryset, limit=settings.DASHBOARD_PAGE_SIZE)

    def get_context(self) -> dict:
        return {}


def render_filtered(request, context, *, page_template, results_template, results_id, status=200):
    """A page with a filtered list: the whole page, or only the results when htmx asks for
    the element `results_id` (a filter change or a page link), with the filters that are set
    pushed to the address bar."""
    is_partial = (
        request.htmx
        and request.htmx.target == results_id
        and not request.htmx.history_restore_request
    )
    response = render(
        request, results_template if is_partial else page_template, context, status=status
    )
    if is_partial:
        # The address bar gets the filters that are set, not every empty field of the form.
        query = urlencode([(k, v) for k, v in request.GET.items() if v])
        response["HX-Push-Url"] = f"{request.path}?{query}" if query else request.path
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def _filter_query(query_dict) -> str:
    """The current filters as a query string, without the cursors (the page links add theirs)."""
    params = query_dict.copy()
    for name in ("after", "before"):
        params.pop(name, None)
    return params.urlencode()
