"""The live status page (/status): its JSON from a real server, the access policy, and the page in headless Chromium.

The browser test needs Debian's chromium (``apt-get install chromium``; .ci/run installs it) and Playwright's Python
package, which drives that binary: Playwright never downloads a browser here.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.http as httpclient

from pytriton_lite.config import TritonConfig, TritonSecurityConfig
from pytriton_lite.decorators import batch
from pytriton_lite.model_config import DynamicBatcher, ModelConfig, Tensor

CHROMIUM = os.environ.get("PYTRITON_LITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
OPEN = TritonSecurityConfig(restricted_endpoints=[])


@batch
def double(x):
    time.sleep(0.002)
    return {"y": x * 2}


def _bind(triton, name="double", count=1):
    triton.bind(
        name,
        [double] * count,
        inputs=[Tensor(name="x", dtype=np.float32, shape=(-1,))],
        outputs=[Tensor(name="y", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=8, batcher=DynamicBatcher(max_queue_delay_microseconds=500)),
    )


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _send(triton, count, name="double"):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.http_port}")
    try:
        for i in range(count):
            data = httpclient.InferInput("x", [1, 3], "FP32")
            data.set_data_from_numpy(np.full((1, 3), i, np.float32))
            client.infer(name, [data])
    finally:
        client.close()


def test_status_data_describes_the_server_and_models(triton_server):
    triton = triton_server(security_config=OPEN)
    _bind(triton, count=2)
    _send(triton, 5)
    status, headers, body = _get(f"http://127.0.0.1:{triton.http_port}/status/data")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    data = json.loads(body)
    assert data["server"]["http_port"] == triton.http_port
    assert data["server"]["grpc_port"] == triton.grpc_port
    assert data["server"]["auth"] is False
    assert 0 < data["server"]["uptime_s"] < 600  # since the server started, not since the first /status
    (model,) = data["models"]
    assert (model["name"], model["version"], model["state"]) == ("double", "1", "READY")
    assert model["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1]}]  # as the model metadata shows it
    assert model["batcher"]["kind"] == "dynamic" and model["batcher"]["max_queue_delay_us"] == 500
    assert model["instances"][0]["count"] == 2
    stats = model["stats"]
    assert stats["success"] == 5
    assert sum(stats["latency_buckets"]) == 5
    assert len(stats["latency_buckets"]) == len(data["latency_bounds_us"]) + 1
    assert sum(count for _, count in stats["batch_sizes"]) == stats["execution_count"] >= 1
    assert sum(us for _, us in stats["instance_busy_us"]) >= 5 * 2000  # each execution sleeps 2 ms


def test_page_is_self_contained_html(triton_server):
    triton = triton_server(security_config=OPEN)
    status, headers, body = _get(f"http://127.0.0.1:{triton.http_port}/status")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "/status/data" in page
    # no external asset: the page works on an air-gapped machine
    assert "http://" not in page and "https://" not in page and "<link" not in page


def test_status_data_is_behind_the_statistics_policy(triton_server):
    triton = triton_server(security_config=TritonSecurityConfig(access_token="s3cret"))
    url = f"http://127.0.0.1:{triton.http_port}"
    assert _get(url + "/status")[0] == 200  # the shell carries no data
    status, _, body = _get(url + "/status/data")
    assert status == 403 and "error" in json.loads(body)
    status, _, body = _get(url + "/status/data", {"triton-access-token": "s3cret"})
    assert status == 200 and json.loads(body)["server"]["auth"] is True


def test_status_page_can_be_turned_off(triton_server):
    triton = triton_server(config=TritonConfig(allow_status_page=False), security_config=OPEN)
    assert _get(f"http://127.0.0.1:{triton.http_port}/status")[0] == 404
    assert _get(f"http://127.0.0.1:{triton.http_port}/status/data")[0] == 404


# The browser runs in a child process: Playwright forks its driver and swaps event loops, neither of which may
# meet this process's gRPC threads and serving loop (on Python 3.9 that broke later tests' event loops).
BROWSER = r"""
import json, sys
from playwright.sync_api import sync_playwright

url, chromium, screenshot = sys.argv[1:4]
args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
live_figures = '''() => {
    const row = document.querySelector('tr[data-model="double"]');
    return row && Number(row.querySelector('td.rps').textContent) > 0
        && Number(row.querySelector('td.requests').textContent) > 0
        && row.querySelector('td.p50').textContent !== '\u2014'
        && row.querySelectorAll('.bar').length > 0;
}'''
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=args)
    try:
        page = browser.new_page()
        page.goto(url)
        row = page.locator('tr[data-model="double"]')
        row.wait_for(timeout=30000)
        first = {
            "idle_rows": page.locator('tr[data-model="idle"]').count(),
            "state": row.locator("td.state").get_attribute("data-state"),
            "requests": row.locator("td.requests").inner_text(),
            "server": page.locator("#server").inner_text(),
        }
        print(json.dumps(first), flush=True)
        sys.stdin.readline()  # the test starts sending traffic
        page.wait_for_function(live_figures, timeout=45000)
        live = {"busy": row.locator("td.busy").inner_text(), "rps": row.locator("td.rps").inner_text()}
        page.screenshot(path=screenshot, full_page=True)
        print(json.dumps(live), flush=True)
    finally:
        browser.close()
"""


@pytest.mark.skipif(not pathlib.Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)")
def test_page_in_a_real_browser_shows_models_and_live_figures(triton_server, tmp_path):
    pytest.importorskip("playwright.sync_api")
    triton = triton_server(security_config=TritonSecurityConfig(access_token="tok"))
    _bind(triton, count=2)
    _bind(triton, name="idle")
    stop = threading.Event()
    sent = []

    def traffic():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and len(sent) < 5000:
            _send(triton, 10)
            sent.append(10)

    screenshot = tmp_path / "status.png"
    url = f"http://127.0.0.1:{triton.http_port}/status?token=tok&interval=300"
    browser = subprocess.Popen(
        [sys.executable, "-c", BROWSER, url, CHROMIUM, str(screenshot)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = threading.Thread(target=traffic, daemon=True)
    try:
        assert browser.stdout is not None and browser.stdin is not None and browser.stderr is not None
        line = browser.stdout.readline()
        assert line, "the browser script printed nothing: " + browser.stderr.read()
        first = json.loads(line)
        assert first["idle_rows"] == 1
        assert first["state"] == "READY"
        assert first["requests"] == "0"
        assert "auth: on" in first["server"]
        worker.start()
        browser.stdin.write("go\n")
        browser.stdin.flush()
        line = browser.stdout.readline()
        assert line, "the browser script stopped: " + browser.stderr.read()
        live = json.loads(line)
        assert browser.wait(timeout=60) == 0
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(timeout=30)
        if browser.poll() is None:
            browser.kill()
            browser.wait(timeout=10)
        for stream in (browser.stdin, browser.stdout, browser.stderr):
            if stream is not None:
                stream.close()
    if os.environ.get("PYTRITON_LITE_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["PYTRITON_LITE_SCREENSHOT"])
    assert screenshot.stat().st_size > 1000
    assert float(live["rps"]) > 0
    # both instances with their busy share of the last interval, e.g. "#0 37% #1 12%"
    busy = live["busy"]
    shares = dict(zip(busy.split()[0::2], busy.split()[1::2]))
    assert set(shares) == {"#0", "#1"}
    assert all(0 <= int(share.rstrip("%")) <= 100 for share in shares.values())
