"""The fast MIME writer, read back by the standard library's parser."""

import email
from email.policy import default

from notifications import mime


def _parse(data: bytes):
    return email.message_from_bytes(data, policy=default)


def test_an_ascii_message_reads_back_with_both_parts():
    data = mime.serialize(
        subject="Your receipt (ACME-0042)",
        from_email="Acme <billing@acme.test>",
        to=["jenny@example.com"],
        text="Hi Jenny,\n\nThanks!\n",
        html="<p>Hi <b>Jenny</b></p>",
        reply_to=["help@acme.test"],
        headers={"X-Relance-Email-Id": "eml_1", "Auto-Submitted": "auto-generated"},
    )
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends only
    parsed = _parse(data)
    assert parsed["Subject"] == "Your receipt (ACME-0042)"
    assert parsed["From"] == "Acme <billing@acme.test>"
    assert parsed["Reply-To"] == "help@acme.test"
    assert parsed["X-Relance-Email-Id"] == "eml_1"
    assert parsed["Message-ID"] and parsed["Date"]
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content() == "Hi Jenny,\r\n\r\nThanks!\r\n"
    assert parsed.get_body(("html",)).get_content().startswith("<p>Hi <b>Jenny</b></p>")


def test_non_ascii_subjects_names_and_bodies_are_encoded():
    data = mime.serialize(
        subject="Votre reçu — Café Zoë",
        from_email="Café Zoë <billing@zoe.test>",
        to=["Jérôme <jerome@example.com>"],
        text="Merci Jérôme, 29,00 €\n",
        html="<p>Merci Jérôme, 29,00 €</p>",
    )
    assert data.isascii()
    parsed = _parse(data)
    assert parsed["Subject"] == "Votre reçu — Café Zoë"
    assert parsed["From"].addresses[0].display_name == "Café Zoë"
    assert parsed["To"].addresses[0].display_name == "Jérôme"
    assert "29,00 €" in parsed.get_body(("plain",)).get_content()
    assert "Jérôme" in parsed.get_body(("html",)).get_content()


def test_long_lines_and_a_leading_dot_survive():
    long_line = "x" * 2000
    data = mime.serialize(
        subject="s", from_email="a@b.test", to=["c@d.test"], text=f"{long_line}\n.\nend\n"
    )
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    parsed = _parse(data)
    assert parsed.get_content().replace("\r\n", "\n") == f"{long_line}\n.\nend\n"


def test_a_header_with_a_newline_cannot_inject_another_header():
    data = mime.serialize(
        subject="Hello\r\nBcc: victim@example.com",
        from_email="a@b.test",
        to=["c@d.test"],
        text="x",
    )
    parsed = _parse(data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hello Bcc: victim@example.com"
