"""Leads edit each kind's notification template and preview it: Jinja2 with autoescaping,
checked before it is saved (a template that does not compile, uses a variable its kind does
not have or cannot render is refused with 422 naming the problem, and nothing changes)."""

from __future__ import annotations

from typing import Any

from agentdesk.models import NotificationKind
from tests.notifications.conftest import Api, ticket_args

URL = "/api/v1/notifications/templates"
OWN = {
    "subject": "Got it: {{ subject }} ({{ ref }})",
    "body_text": "Hi {{ name }}, thanks for writing to {{ team }} about {{ subject }}.",
    "body_html": "<p>Hi {{ name }}, thanks for writing about <i>{{ subject }}</i>.</p>",
}


def _put(api: Api, kind: str, body: dict[str, Any], who: str = "lead") -> Any:
    return api.client.put(f"{URL}/{kind}", json=body, headers=api.headers(who))


def test_leads_list_every_kind_with_its_variables_and_others_may_not(api: Api) -> None:
    r = api.client.get(URL, headers=api.headers("lead"))
    assert r.status_code == 200, r.text
    kinds = {t["kind"]: t for t in r.json()}
    assert set(kinds) == {k.value for k in NotificationKind}
    ack = kinds["acknowledgement"]
    assert ack["customised"] is False
    assert "We received your request" in ack["body_text"]
    assert {"name", "ref", "subject", "expectation"} <= set(ack["variables"])
    for who in ("agent", "coordinator"):
        assert api.client.get(URL, headers=api.headers(who)).status_code == 403
        assert _put(api, "acknowledgement", OWN, who).status_code == 403


def test_an_edited_template_words_the_next_messages_and_escapes_customer_text(api: Api) -> None:
    r = _put(api, "acknowledgement", OWN)
    assert r.status_code == 200, r.text
    assert r.json()["customised"] is True
    w = api.world
    api.push("agent", ("create_ticket", ticket_args(w, subject="<script>x</script> down")))
    [(note, _deliveries)] = api.outbox()
    assert note.subject.startswith("Got it: <script>x</script> down (AD-")
    assert note.body_text.startswith("Hi Ann, thanks for writing to Acme Support about")
    assert "Reference AD-" in note.body_text  # the footer is always added
    assert "<i>&lt;script&gt;x&lt;/script&gt; down</i>" in note.body_html
    assert "<script>" not in note.body_html
    back = api.client.delete(f"{URL}/acknowledgement", headers=api.headers("lead"))
    assert back.json()["customised"] is False
    api.push("agent", ("create_ticket", ticket_args(w, subject="Again")))
    assert api.outbox()[-1][0].subject.startswith("[AD-")


def test_bad_templates_are_refused_naming_the_problem_and_change_nothing(api: Api) -> None:
    assert _put(api, "resolution", OWN).status_code == 200
    cases = [
        ({**OWN, "body_text": "Hi {{ name "}, "body_text", "does not compile"),
        ({**OWN, "body_html": "{% if %}x{% endif %}"}, "body_html", "does not compile"),
        ({**OWN, "subject": "{{ password }} for {{ name }}"}, "subject", "'password'"),
        ({**OWN, "body_text": "{{ assignee }}"}, "body_text", "'assignee'"),
        ({**OWN, "body_text": "{{ name.__class__.__mro__ }}"}, "body_text", "cannot be rendered"),
        ({**OWN, "subject": ""}, "subject", ""),
        ({**OWN, "body_html": "<p>{{ body|safe }}</p>"}, "body_html", "'safe' filter"),
        (
            {**OWN, "body_html": "{% autoescape false %}{{ body }}{% endautoescape %}"},
            "body_html",
            "'autoescape' block",
        ),
    ]
    for body, field, words in cases:
        r = _put(api, "resolution", body)
        assert r.status_code == 422, (body, r.text)
        error = r.json()["error"]
        assert str(error["field"]).endswith(field), error
        assert words in error["message"], error
    now = api.client.get(f"{URL}/resolution", headers=api.headers("lead")).json()
    assert (now["subject"], now["body_text"]) == (OWN["subject"], OWN["body_text"])
    assert _put(api, "no_such_kind", OWN).status_code == 422


def test_preview_renders_the_template_in_use_or_a_draft_with_sample_data(api: Api) -> None:
    lead = api.headers("lead")
    built_in = api.client.post(f"{URL}/assignment/preview", headers=lead)
    assert built_in.status_code == 200, built_in.text
    shown = built_in.json()
    sample_subject = "Checkout shows <Error 500> & no payments"  # customer text with markup
    assert shown["subject"] == f"[AD-1A2B-3C4D] Sam Rivera has your request: {sample_subject}"
    assert shown["sample"]["team"] == "Acme Support"
    assert "<b>Checkout shows &lt;Error 500&gt; &amp; no payments</b>" in shown["body_html"]
    assert sample_subject in shown["body_text"]  # plain text is never interpreted
    # The kind's name and when it is sent, for the editor's list.
    listed = api.client.get(f"{URL}/assignment", headers=lead).json()
    assert listed["title"] == "Assignment"
    assert "first assignment" in listed["sent_when"]
    draft = {**OWN, "body_html": "<p>{{ assignee }} has it, {{ name }}.</p>"}
    r = api.client.post(f"{URL}/assignment/preview", json=draft, headers=lead)
    assert r.status_code == 200, r.text
    assert "<p>Sam Rivera has it, Ann Lee.</p>" in r.json()["body_html"]
    assert not api.client.get(f"{URL}/assignment", headers=lead).json()["customised"]
    bad = api.client.post(
        f"{URL}/assignment/preview", json={**OWN, "subject": "{{ nope }}"}, headers=lead
    )
    assert bad.status_code == 422
    assert "'nope'" in bad.json()["error"]["message"]
