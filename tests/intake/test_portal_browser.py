"""The portal in a real browser (Debian's headless Chromium, driven by Selenium through
chromedriver): a customer fills the form, submits, and sees the reference."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.intake.conftest import Door

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1400",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    # A submit's answer page may still be loading when the next lookup runs (a loaded CI
    # machine once read the old page's zero errors): lookups wait for what they look for.
    driver.implicitly_wait(15)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_customer_files_a_request_and_sees_the_reference(
    door: Door, browser: webdriver.Chrome
) -> None:
    browser.get(f"{door.url}/portal")
    assert "Submit your support request" in browser.page_source
    browser.find_element(By.ID, "email").send_keys("ann@globex.test")
    browser.find_element(By.ID, "name").send_keys("Ann Lee")
    browser.find_element(By.ID, "organisation").send_keys("Globex")
    browser.find_element(By.ID, "subject").send_keys("Checkout <b>down</b>")
    browser.find_element(By.ID, "description").send_keys("Every order fails since 9am.")
    browser.find_element(By.CSS_SELECTOR, "input[name=urgency][value='2']").click()
    honeypot = browser.find_element(By.ID, "website")
    assert not honeypot.is_displayed()
    browser.find_element(By.ID, "submit").click()
    reference = browser.find_element(By.ID, "reference").text
    assert re.fullmatch(r"AD-[0-9A-F]{4}-[0-9A-F]{4}", reference)
    assert "What happens next" in browser.page_source
    # A second submission from the answer page's link works with a fresh CSRF token.
    browser.find_element(By.LINK_TEXT, "Submit another request").click()
    assert browser.find_element(By.ID, "email").get_attribute("value") == ""


def test_a_mistake_is_shown_next_to_the_field(door: Door, browser: webdriver.Chrome) -> None:
    browser.get(f"{door.url}/portal/")
    browser.find_element(By.ID, "email").send_keys("not-an-email")
    browser.find_element(By.ID, "submit").click()
    errors = [e.text for e in browser.find_elements(By.CLASS_NAME, "error")]
    assert "Enter one email address, like name@example.com." in errors
    assert "Choose how urgent it is." in errors
    assert browser.find_element(By.ID, "email").get_attribute("value") == "not-an-email"
