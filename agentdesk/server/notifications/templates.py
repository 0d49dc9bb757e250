"""The notification templates: a subject, a plain-text and an HTML body per kind (Jinja2).

HTML bodies are autoescaped (customer text such as a subject or a reply can hold markup); the
plain-text bodies are not, since they are never interpreted. Subjects are single-line: line
breaks in customer text are folded to spaces so a subject can never become two headers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import (
    DictLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

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
        'Hello {{ name }},\n\nWe received your request "{{ subject }}" ({{ ref }}).\n\n'
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
        'Hello {{ name }},\n\n{{ assignee }} from {{ team }} has your request "{{ subject }}" '
        "({{ ref }}) and will be in touch with the next steps.\n\n{{ expectation }}",
        "<p>Hello {{ name }},</p><p>{{ assignee }} from {{ team }} has your request "
        "<b>{{ subject }}</b> ({{ ref }}) and will be in touch with the next steps.</p>"
        "<p>{{ expectation }}</p>",
    ),
    NotificationKind.REPLY: (
        "Re: [{{ ref }}] {{ subject }}",
        "Hello {{ name }},\n\n{{ body }}\n\n{{ author }}, {{ team }}",
        '<p>Hello {{ name }},</p><p style="white-space:pre-wrap">{{ body }}</p>'
        "<p>{{ author }}, {{ team }}</p>",
    ),
    NotificationKind.EXTRA_CHARGES: (
        "[{{ ref }}] Additional charges for your request: {{ subject }}",
        'Hello {{ name }},\n\nResolving your request "{{ subject }}" ({{ ref }}) needs work '
        "beyond the terms of your support agreement, so additional charges apply"
        "{% if estimate %} (estimate: {{ estimate }}){% endif %}.{% if body %}\n\n{{ body }}"
        "{% endif %}\n\nWe will not go ahead with billable work you have not agreed to; reply "
        "to this message with any questions.",
        "<p>Hello {{ name }},</p><p>Resolving your request <b>{{ subject }}</b> ({{ ref }}) "
        "needs work beyond the terms of your support agreement, so additional charges apply"
        "{% if estimate %} (estimate: {{ estimate }}){% endif %}.</p>{% if body %}"
        '<p style="white-space:pre-wrap">{{ body }}</p>{% endif %}<p>We will not go ahead '
        "with billable work you have not agreed to; reply to this message with any "
        "questions.</p>",
    ),
    NotificationKind.WAITING_ON_CUSTOMER: (
        "[{{ ref }}] We need your input: {{ subject }}",
        "Hello {{ name }},\n\nWe need something from you before we can continue with "
        '"{{ subject }}" ({{ ref }}).{% if body %}\n\n{{ body }}{% endif %}\n\n'
        "Reply to this message and we will pick it up again.",
        "<p>Hello {{ name }},</p><p>We need something from you before we can continue with "
        '<b>{{ subject }}</b> ({{ ref }}).</p>{% if body %}<p style="white-space:pre-wrap">'
        "{{ body }}</p>{% endif %}<p>Reply to this message and we will pick it up again.</p>",
    ),
    NotificationKind.RESOLUTION: (
        "[{{ ref }}] Resolved: {{ subject }}",
        'Hello {{ name }},\n\nYour request "{{ subject }}" ({{ ref }}) is completed.'
        "{% if body %}\n\n{{ body }}{% endif %}\n\nIf something is still not right, reply to "
        "this message and we will reopen it.",
        "<p>Hello {{ name }},</p><p>Your request <b>{{ subject }}</b> ({{ ref }}) is completed."
        '</p>{% if body %}<p style="white-space:pre-wrap">{{ body }}</p>{% endif %}<p>If '
        "something is still not right, reply to this message and we will reopen it.</p>",
    ),
    NotificationKind.REDIRECT_REQUESTER: (
        "[{{ ref }}] About your request: {{ subject }}",
        'Hello {{ name }},\n\nThank you for your request "{{ subject }}" ({{ ref }}).\n\n'
        "{{ body }}",
        "<p>Hello {{ name }},</p><p>Thank you for your request <b>{{ subject }}</b> "
        "({{ ref }}).</p><p>{{ body }}</p>",
    ),
    NotificationKind.REDIRECT_CONTACTS: (
        "[{{ ref }}] How would you like us to proceed? A request from {{ requester }}",
        "Hello {{ name }},\n\nYou are a validated support contact of {{ organisation }}. "
        "{{ requester }} ({{ requester_email }}), who is not a validated support contact, "
        'asked us for help with "{{ subject }}" ({{ ref }}). We can only assist validated '
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


#: kind -> (its name for people, when it is sent and to whom): what the template editor lists.
DESCRIPTIONS: dict[NotificationKind, tuple[str, str]] = {
    NotificationKind.ACKNOWLEDGEMENT: (
        "Acknowledgement",
        "To the requester when a request arrives: the reference and what happens next.",
    ),
    NotificationKind.ASSIGNMENT: (
        "Assignment",
        "To the requester on a ticket's first assignment: who has it and what to expect.",
    ),
    NotificationKind.REPLY: ("Reply", "An agent's reply to the requester."),
    NotificationKind.EXTRA_CHARGES: (
        "Extra charges",
        "To the requester when resolving a request needs billable work beyond the agreement.",
    ),
    NotificationKind.WAITING_ON_CUSTOMER: (
        "Waiting on customer",
        "To the requester when the team needs something from them to continue.",
    ),
    NotificationKind.RESOLUTION: ("Resolution", "To the requester when a request is completed."),
    NotificationKind.REDIRECT_REQUESTER: (
        "Redirect: requester",
        "To a requester who is not a validated support contact of their organisation.",
    ),
    NotificationKind.REDIRECT_CONTACTS: (
        "Redirect: validated contacts",
        "To the organisation's validated contacts when someone else asked for help.",
    ),
    NotificationKind.LATE_CANCELLATION: (
        "Late cancellation",
        "To the validated contacts when a 1-on-1 appointment is cancelled less than 24 hours "
        "before its start.",
    ),
    NotificationKind.ALLOWANCE_COORDINATORS: (
        "Over allowance: coordinators",
        "To the Support Coordinators when a request is over its organisation's allowance.",
    ),
    NotificationKind.PREPAID_EXPIRY: (
        "Prepaid hours expiring",
        "To the validated contacts and their consultant before prepaid 1-on-1 hours expire.",
    ),
}


_FRAME_HTML = (
    '<!doctype html><html><body style="font-family:sans-serif;font-size:14px">',
    "</body></html>",
)


def _loader() -> DictLoader:
    mapping: dict[str, str] = {}
    for kind, (subject, text, html) in SOURCES.items():
        mapping[f"{kind.value}.subject"] = subject
        mapping[f"{kind.value}.txt"] = text + _FOOTER_TEXT
        mapping[f"{kind.value}.html"] = _FRAME_HTML[0] + html + _FOOTER_HTML + _FRAME_HTML[1]
    return DictLoader(mapping)


_ENV = Environment(
    loader=_loader(),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=False,
)
#: Leads' own templates: sandboxed (a template cannot reach Python internals), undefined
#: variables fail, and HTML bodies are autoescaped like the built-in ones.
_LEAD_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)
_LEAD_HTML_ENV = SandboxedEnvironment(
    undefined=StrictUndefined, keep_trailing_newline=False, autoescape=True
)

#: A team's own (subject, text body, HTML body) for a kind: ``NotificationTemplate`` rows.
Override = tuple[str, str, str]
FIELDS = ("subject", "body_text", "body_html")


def variables(kind: NotificationKind) -> frozenset[str]:
    """The names a template of ``kind`` may use: exactly those the built-in one uses (the
    outbox passes them all, so an edited template can never meet an undefined one)."""
    return _VARIABLES[kind]


def _used(env: Environment, source: str) -> set[str]:
    return set(meta.find_undeclared_variables(env.parse(source)))


_VARIABLES: dict[NotificationKind, frozenset[str]] = {
    kind: frozenset(
        {
            "name",
            *_used(_ENV, subject),
            *_used(_ENV, text + _FOOTER_TEXT),
            *_used(_ENV, html + _FOOTER_HTML),
        }
    )
    for kind, (subject, text, html) in SOURCES.items()
}


class TemplateProblem(ValueError):
    """A lead's template that does not compile, or names a variable the kind does not have."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _unescaping(tree: nodes.Template) -> str | None:
    """What in an HTML body would let customer text through unescaped, if anything: the
    ``safe`` filter or an ``autoescape`` block (the HTML body's values are escaped, always)."""
    for node in tree.find_all((nodes.Filter, nodes.ScopedEvalContextModifier)):
        if isinstance(node, nodes.Filter) and node.name == "safe":
            return "the 'safe' filter"
        if isinstance(node, nodes.ScopedEvalContextModifier) and any(
            option.key == "autoescape" for option in node.options
        ):
            return "an 'autoescape' block"
    return None


def check(kind: NotificationKind, override: Override) -> None:
    """Raise :class:`TemplateProblem` naming the first field that would fail to render."""
    allowed = variables(kind)
    for field_name, source in zip(FIELDS, override, strict=True):
        env = _LEAD_HTML_ENV if field_name == "body_html" else _LEAD_ENV
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                field_name, f"{field_name} does not compile: {exc.message} (line {exc.lineno})"
            ) from None
        used = set(meta.find_undeclared_variables(tree))
        unescaping = _unescaping(tree) if field_name == "body_html" else None
        if unescaping is not None:
            raise TemplateProblem(
                field_name,
                f"{field_name} uses {unescaping}, which would put customer text into the email "
                "as HTML; values are always escaped in the HTML body",
            )
        unknown = sorted(used - allowed)
        if unknown:
            raise TemplateProblem(
                field_name,
                f"{field_name} uses {', '.join(repr(u) for u in unknown)}, which a "
                f"{kind.value} notification does not have; it can use: "
                f"{', '.join(sorted(allowed))}",
            )
        try:  # what only rendering shows: the sandbox's refusals, a filter misused
            env.from_string(source).render(SAMPLE)
        except Exception as exc:  # any failure here is the template's, reported as such
            raise TemplateProblem(field_name, f"{field_name} cannot be rendered: {exc}") from None


@lru_cache(maxsize=256)
def _compiled(source: str, html: bool) -> Template:
    return (_LEAD_HTML_ENV if html else _LEAD_ENV).from_string(source)


def render(
    kind: NotificationKind, context: dict[str, Any], override: Override | None = None
) -> tuple[str, str, str]:
    """``(subject, text, html)`` for ``kind``; the subject is one line of at most 400 chars.
    ``override``: the team's own template (checked by :func:`check` when it was saved)."""
    if override is None:
        subject = _ENV.get_template(f"{kind.value}.subject").render(context)
        text = _ENV.get_template(f"{kind.value}.txt").render(context)
        html = _ENV.get_template(f"{kind.value}.html").render(context)
    else:
        subject_src, text_src, html_src = override
        subject = _compiled(subject_src, False).render(context)
        text = _compiled(text_src + _FOOTER_TEXT, False).render(context)
        html = _compiled(_FRAME_HTML[0] + html_src + _FOOTER_HTML + _FRAME_HTML[1], True).render(
            context
        )
    subject = " ".join(subject.split())[:400]
    return subject, text, html


#: What a preview fills each variable with: a plausible request from a plausible customer.
SAMPLE: dict[str, str] = {
    "name": "Ann Lee",
    "ref": "AD-1A2B-3C4D",
    # Customer text with markup in it, so that a preview shows it escaped in the HTML body.
    "subject": "Checkout shows <Error 500> & no payments",
    "team": "Acme Support",
    "organisation": "Globex",
    "requester": "Ann Lee",
    "requester_email": "ann@globex.example",
    "expectation": "For a Tier 1 request on the Premium plan, a first response within 1 "
    "business hour.",
    "body": "Customers see an error at checkout since 09:00.",
    "hours_notice": "",
    "entitlement": "",
    "assignee": "Sam Rivera",
    "author": "Sam Rivera",
    "estimate": "2 hours",
    "starts": "Monday 14 December 2026 at 10:00 (America/New_York)",
    "hours": "4.5 hours",
    "expires": "Friday 18 December 2026 at 11:00 (America/New_York)",
}
