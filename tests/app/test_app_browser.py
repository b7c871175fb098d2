"""The app in a real browser: headless Chromium driven by Selenium picks a class by name, watches the images appear,
completes an upload's bottom half, tokenizes an upload and reads the error of a text file sent as an image. Screenshots land in the test's tmp folder.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the test skips."""

import os
import shutil
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from .conftest import APP_EXTRA, IMAGE_SIZE


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
    reason=f"no Chromium and chromedriver here; install them with `{INSTALL}`",
)


# Records every state the gallery and the status line go through, in the page itself: a poll from the test could miss
# a preview that is on screen for a tenth of a second.
def record_gallery(prefix: str) -> str:
    """A script that records every state of the `prefix` tab's gallery and status line in `window.galleryLog`."""
    return f"""
window.galleryLog = [];
const record = () => window.galleryLog.push({{
    sources: [...document.querySelectorAll('#{prefix}gallery img')].map(image => image.src),
    status: document.querySelector('#{prefix}status').innerText,
}});
new MutationObserver(record).observe(document.body, {{subtree: true, childList: true, characterData: true,
                                                    attributes: true, attributeFilter: ['src']}});
"""


def watch_until_done(driver, prefix: str, button: str, num_images: int) -> list[str]:
    """Press `button`, wait for the `prefix` tab's "Done", and check that its gallery ends with `num_images` images
    of the tokenizer's size that are not blank, after at least one preview; returns the final images' sources."""
    from selenium.webdriver.common.by import By

    driver.execute_script(record_gallery(prefix))
    driver.find_element(By.CSS_SELECTOR, f"#{button}").click()
    wait_for(lambda: "Done" in driver.find_element(By.CSS_SELECTOR, f"#{prefix}status").text, message="Done")
    final = [image.get_attribute("src") for image in driver.find_elements(By.CSS_SELECTOR, f"#{prefix}gallery img")]
    assert len(final) == num_images
    for source in final:
        pixels = fetch_image(source)
        assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and pixels.std() > 5  # the tokenizer's size, not blank
    log = driver.execute_script("return window.galleryLog")
    intermediate = [
        state for state in log if len(state["sources"]) == num_images and not set(state["sources"]) & set(final)
    ]
    assert intermediate, "no image arrived before the final ones"
    assert log.index(intermediate[-1]) < min(i for i, state in enumerate(log) if set(state["sources"]) == set(final))
    # A preview shows the not yet sampled area as a checkerboard of the two grays.
    preview = fetch_image(intermediate[0]["sources"][0])
    assert {150, 200} <= set(np.unique(preview[-2:, :, 0]))
    downloads = driver.find_elements(By.CSS_SELECTOR, f"#{prefix}downloads a")
    assert sum(link.text.endswith(".png") for link in downloads) == num_images or len(downloads) > num_images
    return final


def start_chromium(profile: str):
    """Headless Chromium under Selenium, with a fresh profile in `profile` and no network but 127.0.0.1."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        # Nothing but the app: every other host name fails to resolve, so the page cannot reach out.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):  # fmt: skip
        options.add_argument(argument)
    # An explicit driver path: Selenium Manager then downloads nothing.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("selenium", reason=APP_EXTRA)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    driver = start_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout=60.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def fetch_image(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as response:
        return np.asarray(PIL.Image.open(BytesIO(response.read())).convert("RGB"))


def toast_texts(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [toast.text for toast in driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-body']")]


def close_toasts(driver):
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, "[data-testid='toast-close']"):
        button.click()


def pick_class(driver, typed: str, option: str | None):
    """Type into the class picker and click the named option of the filtered list (or keep the typed text)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, "#class-name input")
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(typed)
    if option is None:
        field.send_keys(Keys.ENTER)
        return
    choices = wait_for(
        lambda: [item for item in driver.find_elements(By.CSS_SELECTOR, "[role='option']") if item.text == option],
        timeout=10, message=f"the option {option!r}",
    )  # fmt: skip
    choices[0].click()
    wait_for(lambda: field.get_attribute("value") == option, timeout=10, message=f"{option!r} picked")


def open_tab(driver, name: str):
    from selenium.webdriver.common.by import By

    next(tab for tab in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if tab.text == name).click()


def set_number(driver, elem_id: str, value: int):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.TAB)


def test_generate_complete_and_tokenize_in_chromium(browser, served_app, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(served_app.url)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#generate"), message="the page")

    # Generate: a class picked by searching its name, three images, watched token by token.
    pick_class(driver, "squ", "square")
    set_number(driver, "num-images", 3)
    watch_until_done(driver, "generate-", "generate", num_images=3)
    driver.save_screenshot(str(tmp_path / "generate.png"))

    # A class name that does not exist, typed instead of picked.
    pick_class(driver, "hexagon", None)
    driver.find_element(By.CSS_SELECTOR, "#generate").click()
    wait_for(lambda: any("Unknown class name 'hexagon'" in text for text in toast_texts(driver)), message="the error")
    close_toasts(driver)

    image_path = tmp_path / "gradient.png"
    gradient = np.linspace(0, 255, 48 * 40 * 3).reshape(40, 48, 3).astype(np.uint8)
    PIL.Image.fromarray(gradient).save(image_path)

    # Complete: an upload, its kept rows, and two completions watched token by token.
    open_tab(driver, "Complete")
    driver.find_element(By.CSS_SELECTOR, "#completion-upload input[type='file']").send_keys(str(image_path))
    set_number(driver, "completion-num-images", 2)
    watch_until_done(driver, "completion-", "complete", num_images=2)
    kept = fetch_image(driver.find_element(By.CSS_SELECTOR, "#completion-kept img").get_attribute("src"))
    # Upscaled for display: the top half is the decoded input, the bottom half the checkerboard of what VIM writes.
    assert set(np.unique(kept[-4:, :, 0])) <= {150, 200} and kept[: kept.shape[0] // 2].std() > 5
    driver.save_screenshot(str(tmp_path / "complete.png"))

    # Tokenizer: an upload, its reconstruction and figures.
    open_tab(driver, "Tokenizer")
    driver.find_element(By.CSS_SELECTOR, "#upload input[type='file']").send_keys(str(image_path))
    for elem_id in ("input", "reconstruction", "token-grid", "codebook"):
        selector = f"#{elem_id} img"
        wait_for(
            lambda selector=selector: driver.find_elements(By.CSS_SELECTOR, selector), message=f"the {elem_id} image"
        )
    metrics = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#metrics").text, message="the metrics")
    assert "PSNR" in metrics and "SSIM" in metrics and "of 32 codes" in metrics
    reconstruction = fetch_image(driver.find_element(By.CSS_SELECTOR, "#reconstruction img").get_attribute("src"))
    assert reconstruction.shape == (256, 256, 3) and reconstruction.std() > 5
    driver.save_screenshot(str(tmp_path / "tokenizer.png"))

    # A text file sent as an image: the page says so.
    driver.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
    text_file = Path(tmp_path / "notes.png")
    text_file.write_text("these are notes, not pixels\n")
    driver.find_element(By.CSS_SELECTOR, "#upload input[type='file']").send_keys(str(text_file))
    wait_for(
        lambda: any("'notes.png' is not an image this app can read" in text for text in toast_texts(driver)),
        message="the error message",
    )
    driver.save_screenshot(str(tmp_path / "not_an_image.png"))
