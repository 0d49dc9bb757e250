"""Screenshots of the support portal in headless Debian Chromium (``docs/screenshots/``).

Serves the real app on a loopback port over a throw-away SQLite database with the seeds' plans
and one customer, fills the form as a customer would, and captures the form and the answer.
Usage: ``.venv/bin/python scripts/portal_screenshot.py`` (needs chromium and chromium-driver).
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from agentdesk.models import Calendar, Contact, Organisation, Plan, Tenant
from agentdesk.models.db import make_engine, make_session_factory, session_scope, sqlite_url
from agentdesk.policy.plans import seed_calendars, seed_plans
from agentdesk.server.app import create_app
from agentdesk.server.settings import ServerSettings

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def seed(url: str) -> None:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        tenant = Tenant(name="Acme", timezone="America/New_York")
        s.add(tenant)
        s.flush()
        cal = Calendar(tenant_id=tenant.id, name="office", data=seed_calendars()["office"][1])
        s.add(cal)
        s.flush()
        plans = {}
        for p in seed_plans():
            row = Plan(tenant_id=tenant.id, calendar_id=cal.id, **Plan.columns_from_policy(p))
            s.add(row)
            plans[p.key] = row
        s.flush()
        org = Organisation(tenant_id=tenant.id, name="Globex", plan_id=plans["standard"].id)
        s.add(org)
        s.flush()
        s.add(Contact(tenant_id=tenant.id, organisation_id=org.id, name="Ann Lee",
                      email="ann@globex.example", validated=True))
    engine.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(Path(tmp) / "portal.sqlite3")
        app = create_app(ServerSettings(database_url=url))
        seed(url)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1280,1500", "--hide-scrollbars"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            driver.get(f"http://127.0.0.1:{port}/portal/")
            driver.find_element(By.ID, "email").send_keys("ann@globex.example")
            driver.find_element(By.ID, "name").send_keys("Ann Lee")
            driver.find_element(By.ID, "organisation").send_keys("Globex")
            driver.find_element(By.ID, "subject").send_keys("Checkout fails for every order")
            driver.find_element(By.ID, "description").send_keys(
                "Since 9:00 every order ends on an error page after payment.")
            driver.find_element(By.CSS_SELECTOR, "input[name=urgency][value='1']").click()
            driver.save_screenshot(str(OUT / "portal-form.png"))
            driver.find_element(By.ID, "submit").click()
            driver.find_element(By.ID, "reference")
            driver.save_screenshot(str(OUT / "portal-answer.png"))
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(10)
            app.state.engine.dispose()
    sys.stderr.write(f"wrote {OUT / 'portal-form.png'} and {OUT / 'portal-answer.png'}\n")


if __name__ == "__main__":
    main()
