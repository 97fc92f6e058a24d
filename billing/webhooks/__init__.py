"""Webhook deliveries (SPEC R-EVT-2..4, R-INV-2; docs/webhooks.md tells the whole story).

- `routing`: which endpoints hear an event, and the outbox rows written with it;
- `signing`: the `Stripe-Signature` (and Standard Webhooks) headers;
- `delivery`: claiming, sending, recording, retrying, disabling endpoints that keep failing;
- `hold`: the `invoice.created` hold on renewal invoices' finalization.

Services people call (resend, replay, test events, rolling secrets) live in
`billing.services.webhooks`.
"""
