"""The notification templates: a subject, a plain-text and an HTML body per kind (Jinja2).

HTML bodies are autoescaped (customer text such as a subject or a reply can hold markup); the
plain-text bodies are not, since they are never interpreted. Subjects are single-line: line
breaks in customer text are folded to spaces so a subject can never become two headers.
"""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from ...models import NotificationKind

_FOOTER_TEXT = (
    "\n\n--\nReference {{ ref }}. Reply to this message to add to your request.\n"
    "This message was sent automatically by {{ team }}."
)
_FOOTER_HTML = (
    '<p style="color:#666;font-size:12px">Reference {{ ref }}. Reply to this message to add to '
    "your request.<br>This message was sent automatically by {{ team }}.</p>"
)

#: kind -> (subject, text body, HTML body). Context: see ``outbox._context``.
SOURCES: dict[NotificationKind, tuple[str, str, str]] = {
    NotificationKind.ACKNOWLEDGEMENT: (
        "[{{ ref }}] We received your request: {{ subject }}",
        "Hello {{ name }},\n\nWe received your request \"{{ subject }}\" ({{ ref }}).\n\n"
        "What happens next:\n"
        "1. A Support Coordinator reviews it and assesses its severity.\n"
        "2. A real person tells you who it has been assigned to and what to expect.\n"
        "3. Your request is completed, and you are notified.\n\n"
        "{{ expectation }}{% if hours_notice %}\n\n{{ hours_notice }}{% endif %}"
        "{% if entitlement %}\n\nPlease note: {{ entitlement }}{% endif %}",
        "<p>Hello {{ name }},</p><p>We received your request <b>{{ subject }}</b> "
        "({{ ref }}).</p><p>What happens next:</p><ol>"
        "<li>A Support Coordinator reviews it and assesses its severity.</li>"
        "<li>A real person tells you who it has been assigned to and what to expect.</li>"
        "<li>Your request is completed, and you are notified.</li></ol>"
        "<p>{{ expectation }}</p>{% if hours_notice %}<p>{{ hours_notice }}</p>{% endif %}"
        "{% if entitlement %}<p>Please note: {{ entitlement }}</p>{% endif %}",
    ),
    NotificationKind.ASSIGNMENT: (
        "[{{ ref }}] {{ assignee }} has your request: {{ subject }}",
        "Hello {{ name }},\n\n{{ assignee }} from {{ team }} has your request \"{{ subject }}\" "
        "({{ ref }}) and will be in touch with the next steps.\n\n{{ expectation }}",
        "<p>Hello {{ name }},</p><p>{{ assignee }} from {{ team }} has your request "
        "<b>{{ subject }}</b> ({{ ref }}) and will be in touch with the next steps.</p>"
        "<p>{{ expectation }}</p>",
    ),
    NotificationKind.REPLY: (
        "Re: [{{ ref }}] {{ subject }}",
        "Hello {{ name }},\n\n{{ body }}\n\n{{ author }}, {{ team }}",
        "<p>Hello {{ name }},</p><p style=\"white-space:pre-wrap\">{{ body }}</p>"
        "<p>{{ author }}, {{ team }}</p>",
    ),
    NotificationKind.EXTRA_CHARGES: (
        "[{{ ref }}] Additional charges for your request: {{ subject }}",
        "Hello {{ name }},\n\nResolving your request \"{{ subject }}\" ({{ ref }}) needs work "
        "beyond the terms of your support agreement, so additional charges apply"
        "{% if estimate %} (estimate: {{ estimate }}){% endif %}.{% if body %}\n\n{{ body }}"
        "{% endif %}\n\nWe will not go ahead with billable work you have not agreed to; reply "
        "to this message with any questions.",
        "<p>Hello {{ name }},</p><p>Resolving your request <b>{{ subject }}</b> ({{ ref }}) "
        "needs work beyond the terms of your support agreement, so additional charges apply"
        "{% if estimate %} (estimate: {{ estimate }}){% endif %}.</p>{% if body %}"
        "<p style=\"white-space:pre-wrap\">{{ body }}</p>{% endif %}<p>We will not go ahead "
        "with billable work you have not agreed to; reply to this message with any "
        "questions.</p>",
    ),
    NotificationKind.WAITING_ON_CUSTOMER: (
        "[{{ ref }}] We need your input: {{ subject }}",
        "Hello {{ name }},\n\nWe need something from you before we can continue with "
        "\"{{ subject }}\" ({{ ref }}).{% if body %}\n\n{{ body }}{% endif %}\n\n"
        "Reply to this message and we will pick it up again.",
        "<p>Hello {{ name }},</p><p>We need something from you before we can continue with "
        "<b>{{ subject }}</b> ({{ ref }}).</p>{% if body %}<p style=\"white-space:pre-wrap\">"
        "{{ body }}</p>{% endif %}<p>Reply to this message and we will pick it up again.</p>",
    ),
    NotificationKind.RESOLUTION: (
        "[{{ ref }}] Resolved: {{ subject }}",
        "Hello {{ name }},\n\nYour request \"{{ subject }}\" ({{ ref }}) is completed."
        "{% if body %}\n\n{{ body }}{% endif %}\n\nIf something is still not right, reply to "
        "this message and we will reopen it.",
        "<p>Hello {{ name }},</p><p>Your request <b>{{ subject }}</b> ({{ ref }}) is completed."
        "</p>{% if body %}<p style=\"white-space:pre-wrap\">{{ body }}</p>{% endif %}<p>If "
        "something is still not right, reply to this message and we will reopen it.</p>",
    ),
    NotificationKind.REDIRECT_REQUESTER: (
        "[{{ ref }}] About your request: {{ subject }}",
        "Hello {{ name }},\n\nThank you for your request \"{{ subject }}\" ({{ ref }}).\n\n"
        "{{ body }}",
        "<p>Hello {{ name }},</p><p>Thank you for your request <b>{{ subject }}</b> "
        "({{ ref }}).</p><p>{{ body }}</p>",
    ),
    NotificationKind.REDIRECT_CONTACTS: (
        "[{{ ref }}] How would you like us to proceed? A request from {{ requester }}",
        "Hello {{ name }},\n\nYou are a validated support contact of {{ organisation }}. "
        "{{ requester }} ({{ requester_email }}), who is not a validated support contact, "
        "asked us for help with \"{{ subject }}\" ({{ ref }}). We can only assist validated "
        "contacts, so we have not started on it.\n\nHow would you like to proceed? Reply to "
        "this message: you can take the request over, or validate {{ requester }} as a support "
        "contact (your plan includes a set number of contacts, which you may switch in and "
        "out).",
        "<p>Hello {{ name }},</p><p>You are a validated support contact of {{ organisation }}. "
        "{{ requester }} ({{ requester_email }}), who is not a validated support contact, "
        "asked us for help with <b>{{ subject }}</b> ({{ ref }}). We can only assist "
        "validated contacts, so we have not started on it.</p><p>How would you like to "
        "proceed? Reply to this message: you can take the request over, or validate "
        "{{ requester }} as a support contact (your plan includes a set number of contacts, "
        "which you may switch in and out).</p>",
    ),
    NotificationKind.LATE_CANCELLATION: (
        "Late cancellation of your 1-on-1 appointment on {{ starts }}",
        "Hello {{ name }},\n\nYour 1-on-1 Tech Support appointment on {{ starts }} was "
        "cancelled less than 24 hours before its start, so 30 minutes are billed (our policy: "
        "cancellations at least 24 hours in advance are free).\n\nTo reschedule, open a "
        "support ticket as soon as you know you cannot make an appointment.",
        "<p>Hello {{ name }},</p><p>Your 1-on-1 Tech Support appointment on {{ starts }} was "
        "cancelled less than 24 hours before its start, so 30 minutes are billed (our policy: "
        "cancellations at least 24 hours in advance are free).</p><p>To reschedule, open a "
        "support ticket as soon as you know you cannot make an appointment.</p>",
    ),
    NotificationKind.PREPAID_EXPIRY: (
        "{{ hours }} of your prepaid 1-on-1 hours expire on {{ expires }}",
        "Hello {{ name }},\n\n{{ organisation }} has {{ hours }} of prepaid 1-on-1 Tech Support "
        "left in a block that expires on {{ expires }}.\n\nPrepaid hours are used within 90 "
        "days of purchase; hours not used by then are forfeited and not refunded. To use them, "
        "book a 1-on-1 appointment or open a support ticket before that date.",
        "<p>Hello {{ name }},</p><p>{{ organisation }} has <b>{{ hours }}</b> of prepaid 1-on-1 "
        "Tech Support left in a block that expires on <b>{{ expires }}</b>.</p><p>Prepaid hours "
        "are used within 90 days of purchase; hours not used by then are forfeited and not "
        "refunded. To use them, book a 1-on-1 appointment or open a support ticket before that "
        "date.</p>",
    ),
    NotificationKind.ALLOWANCE_COORDINATORS: (
        "[{{ ref }}] Over allowance: {{ organisation }}: {{ subject }}",
        "A request from {{ requester }} of {{ organisation }} is over its allowance.\n\n"
        "{{ body }}\n\nDecide whether to work it, offer an upgrade, or decline it.",
        "<p>A request from {{ requester }} of {{ organisation }} is over its allowance.</p>"
        "<p>{{ body }}</p><p>Decide whether to work it, offer an upgrade, or decline it.</p>",
    ),
}


def _loader() -> DictLoader:
    mapping: dict[str, str] = {}
    for kind, (subject, text, html) in SOURCES.items():
        mapping[f"{kind.value}.subject"] = subject
        mapping[f"{kind.value}.txt"] = text + _FOOTER_TEXT
        mapping[f"{kind.value}.html"] = (
            '<!doctype html><html><body style="font-family:sans-serif;font-size:14px">'
            + html + _FOOTER_HTML + "</body></html>"
        )
    return DictLoader(mapping)


_ENV = Environment(
    loader=_loader(),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=False,
)


def render(kind: NotificationKind, context: dict[str, Any]) -> tuple[str, str, str]:
    """``(subject, text, html)`` for ``kind``; the subject is one line of at most 400 chars."""
    subject = _ENV.get_template(f"{kind.value}.subject").render(context)
    subject = " ".join(subject.split())[:400]
    text = _ENV.get_template(f"{kind.value}.txt").render(context)
    html = _ENV.get_template(f"{kind.value}.html").render(context)
    return subject, text, html
