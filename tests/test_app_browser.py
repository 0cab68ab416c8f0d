"""The web app in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which ``.ci/run``
installs): open the page, upload a clip, start an edit of a run tuned with ``train.py``, wait for the
edited video, save a screenshot, open the Animate tab.

The browser reaches nothing but the app on 127.0.0.1 (every other host name resolves to nothing).
``VIDSYNTH_APP_SCREENSHOT=docs/app.png`` also writes the screenshot there: the README's picture.
"""

import os
import re
import shutil
import socket
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState, GradientState
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from vidsynth import train
from vidsynth.app.server import serve
from vidsynth.app.service import Studio
from vidsynth.media.scene import render_scene
from vidsynth.run_folder import RESULT_FILE

# Gradio's own queue metrics trip pandas 3's deprecation warnings on every event; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT_S = 240  # a guard against a hang, not a speed requirement
PROMPTS = ["a red ball over the sea", "a blue ball, cartoon style"]


def _tuned_with_train_py(outputs: Path, clip: Path) -> Path:
    """A 2-step run made by ``train.py``'s main (in this process), in the app's outputs folder."""
    config = outputs.parent / "tune.yaml"
    config.write_text(
        f"pretrained_model_path: tiny\noutput_dir: {outputs / 'cli-run'}\n"
        f"train_data:\n  video_path: {clip}\n  prompt: a ball is flying\n  n_sample_frames: 4\n"
        "  width: 64\n  height: 64\n  sample_frame_rate: 2\nmax_train_steps: 2\ngradient_checkpointing: false\n"
    )
    try:
        return train.main(["--config", str(config)]).parent
    finally:  # accelerate's process-wide state, as after a process
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


@pytest.fixture
def app_url(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    studio = Studio(tmp_path / "outputs", checkpoints=tmp_path / "checkpoints")  # builds the tiny model
    clip = render_scene(tmp_path / "flight.mp4", 8, 64, 64, 8.0, audio_channels=2)
    assert (_tuned_with_train_py(studio.outputs, clip) / RESULT_FILE).is_file()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    page, url = serve(studio, "127.0.0.1", port)
    yield url, clip
    page.close()
    studio.close()


@pytest.fixture
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    assert not missing, f"{missing} not found: apt-get install chromium chromium-driver (as .ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no network beyond the app
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _set(field, text: str) -> None:
    field.clear()
    field.send_keys(text)


def test_upload_a_clip_edit_a_run_and_watch_the_result(app_url, browser, tmp_path):
    url, clip = app_url
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(url)
    wait.until(ready.text_to_be_present_in_element((By.TAG_NAME, "h1"), "VidSynth"))
    assert "random weights" in browser.find_element(By.ID, "base-notice").text  # the tiny model is announced

    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(clip))
    wait.until(ready.text_to_be_present_in_element((By.ID, "clip-facts"), "with sound"))
    assert "64×64, 8 fps, 8 frames, 1.00 s" in browser.find_element(By.ID, "clip-facts").text

    browser.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Edit']").click()
    wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, "#edit-prompts textarea")))
    _set(browser.find_element(By.CSS_SELECTOR, "#edit-prompts textarea"), "\n".join(PROMPTS))
    _set(browser.find_element(By.CSS_SELECTOR, "#edit-steps input"), "2")
    browser.find_element(By.ID, "edit-button").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "edit-status"), "queued"))

    videos = (By.CSS_SELECTOR, "#edit-videos video")
    wait.until(lambda driver: len(driver.find_elements(*videos)) == 1 + len(PROMPTS))  # the source and each edit
    wait.until(ready.text_to_be_present_in_element((By.ID, "metrics"), "tuneavideo"))
    page = browser.find_element(By.TAG_NAME, "body").text
    assert all(prompt in page for prompt in PROMPTS) and "cli-run" in page
    wait.until(ready.text_to_be_present_in_element((By.ID, "edit-progress"), "done"))
    sources = [video.get_attribute("src") for video in browser.find_elements(*videos)]
    assert all(src and src.endswith(".mp4") for src in sources) and len(set(sources)) == len(sources)

    browser.execute_script("window.scrollTo(0, 0)")
    screenshot = tmp_path / "app.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
    if target := os.environ.get("VIDSYNTH_APP_SCREENSHOT"):
        shutil.copyfile(screenshot, target)

    # Region options: the run's first frame, a click on it marked and read as a point in the clip's pixels.
    browser.find_element(By.XPATH, "//button[contains(., 'Region (edit part of the frame)')]").click()
    frame = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, "#region-frame img")))
    ActionChains(browser).move_to_element(frame).click().perform()
    wait.until(ready.text_to_be_present_in_element((By.ID, "region-frame-status"), "Segment point"))
    status = browser.find_element(By.ID, "region-frame-status").text
    assert re.fullmatch(r"Segment point [\d.]+,[\d.]+ \(the clip's pixels\)", status), status
    assert status.split()[2] == browser.find_element(By.CSS_SELECTOR, "#segment-point textarea").get_attribute("value")

    browser.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Animate']").click()
    wait.until(ready.text_to_be_present_in_element((By.ID, "animate-notice"), "random weights"))  # the tiny SVD
    assert browser.find_element(By.ID, "animate-button").is_displayed()
