"""Customer emails: settings, rendering, hosted links, sending and the per-kind rules.

- `settings`: each account's email settings per mode (SPEC R-MAIL-1);
- `rendering`: the one helper that renders templates/emails/<kind>.* with the branding;
- `links`: hosted links — issue, resolve (every R-MAIL-6 condition), deactivate;
- `sending`: the log, the test-mode restriction, delivery with retries and de-duplication;
- `emails`: which email each event or due job sends, and when (R-MAIL-2 … R-MAIL-4).
"""
