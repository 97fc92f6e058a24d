"""The /v1 URL map (mounted at /v1/ by config/urls.py); anything else is Stripe's 404."""

from django.urls import path, re_path

from billing.api import catalog, customers
from billing.api.base import UnknownEndpoint

app_name = "api"

urlpatterns = [
    path("customers", customers.CustomersView.as_view()),
    path("customers/<str:customer_id>", customers.CustomerView.as_view()),
    path(
        "customers/<str:customer_id>/payment_methods",
        customers.CustomerPaymentMethodsView.as_view(),
    ),
    path("payment_methods", customers.PaymentMethodsView.as_view()),
    path("payment_methods/<str:payment_method_id>", customers.PaymentMethodView.as_view()),
    path(
        "payment_methods/<str:payment_method_id>/attach",
        customers.PaymentMethodAttachView.as_view(),
    ),
    path(
        "payment_methods/<str:payment_method_id>/detach",
        customers.PaymentMethodDetachView.as_view(),
    ),
    path("products", catalog.ProductsView.as_view()),
    path("products/<str:product_id>", catalog.ProductView.as_view()),
    path("prices", catalog.PricesView.as_view()),
    path("prices/<str:price_id>", catalog.PriceView.as_view()),
    path("coupons", catalog.CouponsView.as_view()),
    path("coupons/<str:coupon_id>", catalog.CouponView.as_view()),
    re_path(r"^.*$", UnknownEndpoint.as_view()),
]
