"""The Stripe-compatible /v1 API: Stripe's wire protocol over the billing services.

A request goes through `base.ApiView`: request id, authentication (`auth`), rate limit,
form decoding (`params`), validation against the endpoint's schema, idempotency
(`idempotency`), one service call in one transaction, and rendering with
`billing.serializers.serialize` plus `expand`. Errors are `errors.ApiError`, rendered in
Stripe's `{"error": {...}}` shape.
"""
