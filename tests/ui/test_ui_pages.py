"""The run history page's routes on a test client: the list (newest first, filters, counts,
keyset paging), search by an id or email a run touched, a run's page, the queue and its
actions (refused without the CSRF token), connections and links without a secret, and the live
stream's events."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from html import unescape
from typing import Any

from connector.records import RunRecord, StepRecord
from connector.ui.live import Changes
from tests.ui.conftest import SECRET_TOKEN, Page

Record = Callable[..., RunRecord]


def run_ids(html: str) -> list[str]:
    """The run ids of the list's rows, in the order shown."""
    return re.findall(r'<tr data-run-id="(run_[^"]+)"', html)


def contact_step(contact_id: str, email: str = "ada@example.com") -> StepRecord:
    return StepRecord(
        id="contact",
        action="ghl.get-contact",
        status="succeeded",
        method="GET",
        url=f"https://services.leadconnectorhq.com/contacts/{contact_id}",
        status_code=200,
        output={"contact": {"id": contact_id, "email": email, "firstName": "Ada"}},
        request_headers={"Authorization": f"Bearer {SECRET_TOKEN}", "Version": "2021-07-28"},
        attempts=1,
    )


def test_the_list_shows_runs_newest_first_with_counts(page: Page, record: Record) -> None:
    first = record(status="succeeded")
    second = record(status="failed", error="step 'contact': 404 Contact not found")
    third = record(status="succeeded", recipe="create-task-from-connecteam")
    html = page.client.get("/").text
    assert run_ids(html) == [third.id, second.id, first.id]
    assert 'data-count="all">3<' in html
    assert 'data-count="failed">1<' in html
    assert 'data-count="succeeded">2<' in html
    assert "404 Contact not found" in html


def test_filters_narrow_the_list_and_the_counts(page: Page, record: Record) -> None:
    a = record(recipe="push-contact-edits", status="failed")
    b = record(recipe="push-contact-edits", status="succeeded")
    c = record(recipe="create-task-from-connecteam", trigger_app="connecteam",
               trigger_event="task_published")  # fmt: skip
    get = page.client.get
    assert run_ids(get("/?recipe=push-contact-edits").text) == [b.id, a.id]
    assert run_ids(get("/?recipe=push-contact-edits&status=failed").text) == [a.id]
    assert run_ids(get("/?trigger=task_published").text) == [c.id]
    assert run_ids(get("/?trigger=connecteam task_published").text) == [c.id]
    assert run_ids(get("/?trigger=ghl task_published").text) == []
    html = get("/?recipe=push-contact-edits&status=failed").text
    assert 'data-count="all">2<' in html  # the counts keep every status of the recipe
    # a time range, UTC, as stored times compare
    assert run_ids(get(f"/?since={b.started_at}").text) == [c.id, b.id]
    assert run_ids(get(f"/?until={b.started_at}").text) == [a.id]
    bad = get("/?since=yesterday").text
    assert "yesterday" in bad and "is not a time" in bad


def test_search_finds_the_runs_that_touched_an_id_or_an_email(page: Page, record: Record) -> None:
    by_trigger = record(trigger={"contactId": "ocQHyuzHvysMo5N5VsXc", "userId": 9001})
    by_step = record(
        trigger={"type": "ContactUpdate"}, steps=[contact_step("ocQHyuzHvysMo5N5VsXc")]
    )
    other = record(
        trigger={"contactId": "zzOtherContact01"},
        steps=[contact_step("zzOtherContact01", "bob@example.org")],
    )
    by_user = record(
        recipe="create-contact-from-connecteam",
        trigger_app="connecteam",
        trigger_event="user_created",
        trigger={"eventType": "user_created", "data": [{"userId": 9001}]},
    )
    get = page.client.get
    assert run_ids(get("/?q=ocQHyuzHvysMo5N5VsXc").text) == [by_step.id, by_trigger.id]
    assert run_ids(get("/?q=9001").text) == [by_user.id, by_trigger.id]  # a Connecteam user id
    assert run_ids(get("/?q=ADA@example.com").text) == [by_step.id]  # any letter case
    assert run_ids(get("/?q=bob@example.org").text) == [other.id]
    assert run_ids(get("/?q=nobody@example.org").text) == []
    assert run_ids(get(f"/?q={other.id[:10]}").text)[-1] == other.id  # a run id's prefix
    # the search combines with the filters
    assert run_ids(get("/?q=9001&recipe=create-contact-from-connecteam").text) == [by_user.id]


def test_keyset_paging_walks_every_run_once(page: Page, record: Record) -> None:
    made = [record(trigger={"contactId": "pagedContact77", "n": i}) for i in range(120)]
    for query in ("/?", "/?q=pagedContact77&"):
        seen: list[str] = []
        url = query
        while True:
            html = page.client.get(url).text
            ids = run_ids(html)
            assert 0 < len(ids) <= 50
            seen += ids
            older = re.search(r'rel="next" href="([^"]+)"', html)
            if older is None:
                break
            url = older.group(1).replace("&amp;", "&")
        assert seen == [r.id for r in reversed(made)]


def test_a_runs_page_shows_its_steps_redacted(page: Page, record: Record) -> None:
    items = [
        StepRecord(
            id="tag",
            action="ghl.add-tags",
            status="succeeded" if i != 3 else "failed",
            method="POST",
            url=f"https://services.leadconnectorhq.com/contacts/c{i}/tags",
            status_code=201 if i != 3 else 422,
            index=i,
            attempts=1 if i != 2 else 3,
            request_body={"tags": ["synced"]},
            output={"tags": ["synced"]},
            error=None if i != 3 else "422 tags must be strings",
            waits=[{"seconds": 2.0, "reason": "429 Retry-After"}] if i == 2 else [],
        )
        for i in range(5)
    ]
    leaky = StepRecord(
        id="token", action="ghl.get-contact", status="succeeded", method="GET",
        url="https://services.leadconnectorhq.com/oauth/locationToken", status_code=200,
        output={"access_token": "sk-live-not-for-eyes", "note": f"echo {SECRET_TOKEN}"},
    )  # fmt: skip
    run = record(
        status="failed",
        steps=[contact_step("ocQHyuzHvysMo5N5VsXc"), leaky,
               StepRecord(id="tag", action="ghl.add-tags", status="failed", items=items)],
        error="step 'tag': 1 of 5 items failed",
    )  # fmt: skip
    html = page.client.get(f"/ui/runs/{run.id}").text
    assert 'id="step-contact"' in html and 'id="step-tag"' in html
    assert "foreach: 5 items, 1 failed" in html
    assert "3 attempts" in html
    assert "waited 2.0 s: 429 Retry-After" in html
    assert "422 tags must be strings" in html
    assert "ocqhyuzhvysmo5n5vsxc" in html  # among the ids it touched, a link to the search
    assert SECRET_TOKEN not in html
    assert "sk-live-not-for-eyes" not in html
    assert "Retry from the failed step" in html
    # a prefix of the id is enough; an unknown id is a page that says so
    assert page.client.get(f"/ui/runs/{run.id[:12]}").status_code == 200
    missing = page.client.get("/ui/runs/run_nope")
    assert missing.status_code == 404 and "no run 'run_nope'" in unescape(missing.text)


def test_a_run_links_its_retries_and_the_run_it_retried(page: Page, record: Record) -> None:
    old = record(status="failed")
    page.runtime.store.put_fork("run_child000000xxxxxxxxx", "retry", old.id)
    child = record(status="succeeded", parent=old.id)
    html = page.client.get(f"/ui/runs/{old.id}").text
    assert f'href="/ui/runs/{child.id}"' in html
    html = page.client.get(f"/ui/runs/{child.id}").text
    assert f'href="/ui/runs/{old.id}"' in html


def test_actions_are_refused_without_the_csrf_token(page: Page, record: Record) -> None:
    run = record(status="failed")
    for action in ("retry", "replay", "resolve"):
        refused = page.client.post(f"/ui/runs/{run.id}/{action}", data={})
        assert refused.status_code == 403, action
        assert "CSRF" in refused.text
        forged = page.client.post(f"/ui/runs/{run.id}/{action}", data={"csrf": "0" * 64})
        assert forged.status_code == 403, action
    token = page.csrf("/ui/queue")
    other_site = page.client.post(
        f"/ui/runs/{run.id}/resolve",
        data={"csrf": token},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert run.id in page.client.get("/ui/queue").text  # nothing was done


def test_the_queue_lists_failed_runs_until_resolved(page: Page, record: Record) -> None:
    done = record(status="succeeded")
    failed = record(status="failed", error="step 'contact': 500")
    fixed = record(status="failed")
    record(status="succeeded", parent=fixed.id)  # a retry of it succeeded
    html = page.client.get("/ui/queue").text
    assert run_ids(html) == [failed.id]
    assert done.id not in html
    token = page.csrf("/ui/queue")
    answer = page.client.post(
        f"/ui/runs/{failed.id}/resolve",
        data={"csrf": token, "note": "fixed the contact by hand", "back": "queue"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/queue"
    assert run_ids(page.client.get("/ui/queue").text) == []
    run_html = page.client.get(f"/ui/runs/{failed.id}").text
    assert "fixed the contact by hand" in run_html and "Reopen" in run_html
    assert "resolved" in page.client.get("/?status=failed").text
    page.client.post(f"/ui/runs/{failed.id}/resolve", data={"csrf": token, "reopen": "1"})
    assert run_ids(page.client.get("/ui/queue").text) == [failed.id]


def test_retry_is_refused_for_a_run_that_did_not_fail(page: Page, record: Record) -> None:
    run = record(status="succeeded", steps=[contact_step("ocQHyuzHvysMo5N5VsXc")])
    token = page.csrf(f"/ui/runs/{run.id}")  # of its replay form
    answer = page.client.post(f"/ui/runs/{run.id}/retry", data={"csrf": token})
    assert answer.status_code == 409
    assert "only a failed run is retried" in answer.text


def test_connections_show_their_state_never_their_secret(page: Page) -> None:
    from cryptography.fernet import Fernet

    from connector.persistence.connections import Connection, ConnectionStore
    from connector.persistence.sealing import SecretBox

    store = ConnectionStore(page.runtime.db.engine, SecretBox(Fernet.generate_key(), "test"))
    store.put(
        Connection(id="ghl:location:loc123", app="ghl", kind="location", account="loc123",
                   scopes=("contacts.readonly",), expires_at=1.0),
        {"access_token": "at-very-secret-1", "refresh_token": "rt-very-secret-2"},
    )  # fmt: skip
    html = page.client.get("/ui/connections").text
    assert "loc123" in html and "expired" in html and "contacts.readonly" in html
    assert "at-very-secret-1" not in html and "rt-very-secret-2" not in html
    assert "GHL_TOKEN" in html and SECRET_TOKEN not in html  # set, its value not shown


def test_the_links_page_and_a_runs_links(page: Page, record: Record) -> None:
    page.runtime.links.put("contact", "ocQHyuzHvysMo5N5VsXc", 9001)
    page.runtime.links.put("contact", "someoneElse1234", 9002)
    html = page.client.get("/ui/links").text
    assert "ocQHyuzHvysMo5N5VsXc" in html and "9002" in html
    found = page.client.get("/ui/links?q=9001").text
    assert "ocQHyuzHvysMo5N5VsXc" in found and "9002" not in found
    run = record(steps=[contact_step("ocQHyuzHvysMo5N5VsXc")])
    run_html = page.client.get(f"/ui/runs/{run.id}").text
    assert "Id links among them" in run_html and "9001" in run_html


def test_the_links_page_pages_through_every_link_newest_first(page: Page) -> None:
    """It showed the newest 200 links and no way to the others."""
    import re
    from html import unescape

    for n in range(450):
        page.runtime.links.put("contact", f"ghl{n:04d}", 10_000 + n)
    page.runtime.links.put("task", "ghl-task-1", 1)  # another kind, filtered out below
    seen: list[str] = []
    url: str | None = "/ui/links?kind=contact"
    pages = 0
    while url is not None:
        html = page.client.get(url).text
        pages += 1
        seen += re.findall(r">(ghl\d{4})</a>", html)
        older = re.search(r'<a rel="next" href="([^"]+)"', html)
        url = unescape(older.group(1)) if older else None
        if pages > 1:
            assert "« newest" in html
    assert pages == 3
    assert sorted(seen) == [f"ghl{n:04d}" for n in range(450)]  # each once
    assert "ghl-task-1" not in "".join(seen)


def test_the_live_stream_sends_new_runs_and_status_changes(page: Page, record: Record) -> None:
    before = record(status="running")
    changes = Changes(page.ui.history, page.ui.row, poll=0.02)

    async def take() -> list[dict[str, Any]]:
        import json

        stream = changes.stream([])
        first = await anext(stream)
        assert first.startswith("retry:")
        new = record(status="running")
        got = [await anext(stream)]
        before.status = "succeeded"  # type: ignore[assignment]
        page.runtime.store.set_status(before)
        got.append(await anext(stream))
        await stream.aclose()
        assert new.id in got[0]
        return [json.loads(chunk.split("data: ", 1)[1]) for chunk in got]

    events = asyncio.run(take())
    assert events[0]["status"] == "running" and "<tr data-run-id" in events[0]["row"]
    assert events[1] == {**events[1], "id": before.id, "status": "succeeded"}


def test_a_retry_of_a_retry_that_succeeds_takes_both_failed_runs_out_of_the_queue(
    page: Page, record: Record
) -> None:
    first = record(status="failed")
    second = record(status="failed", parent=first.id)  # its retry failed too
    waiting = record(status="failed")
    html = page.client.get("/ui/queue").text
    assert set(run_ids(html)) == {first.id, second.id, waiting.id}
    third = record(status="succeeded", parent=second.id)  # the retry of the retry succeeded
    assert run_ids(page.client.get("/ui/queue").text) == [waiting.id]
    listed = page.client.get("/?status=failed").text  # the list tags the run it fixed
    row = listed[listed.index(f'data-run-id="{second.id}"') :].split("</tr>")[0]
    assert '<span class="tag">fixed</span>' in row
    row = listed[listed.index(f'data-run-id="{waiting.id}"') :].split("</tr>")[0]
    assert "fixed" not in row
    first_html = page.client.get(f"/ui/runs/{first.id}").text
    assert f'id="fixed-by">fixed by <a href="/ui/runs/{third.id}"' in first_html
    third_html = page.client.get(f"/ui/runs/{third.id}").text
    for fixed in (first.id, second.id):
        assert f'fixes <a href="/ui/runs/{fixed}"' in third_html
