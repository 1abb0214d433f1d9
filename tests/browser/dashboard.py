#!/usr/bin/env python3
"""Drive the Switchyard dashboard in headless Chromium through chromedriver (W3C WebDriver over
HTTP, standard library only): sign in with a read token typed into the form, check that the
migration matrix, a verdict and a side-by-side diff are shown, and save a screenshot.

usage: dashboard.py --url http://127.0.0.1:PORT/ --token TOKEN --out target/dashboard.png
                    [--chromium PATH] [--chromedriver PATH] [--expect-route cards]
Exit 0 and "dashboard ok: …" on success; non-zero and "FAIL: why" otherwise.
"""
import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Fail(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Driver:
    def __init__(self, base):
        self.base = base
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r).get("value")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:400]
            raise Fail(f"webdriver {method} {path}: {e.code} {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise Fail(f"webdriver {method} {path}: {e}") from None

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def find(self, css):
        found = self.s("POST", "/elements", {"using": "css selector", "value": css})
        return [f[ELEMENT] for f in found]

    def text(self, css):
        return "\n".join(self.s("GET", f"/element/{e}/text") for e in self.find(css))

    def script(self, source, *args):
        return self.s("POST", "/execute/sync", {"script": source, "args": list(args)})

    def wait(self, what, check, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = check()
                if last:
                    return last
            except Fail:
                pass
            time.sleep(0.2)
        raise Fail(f"timed out waiting for {what} (last: {last!r})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--chromedriver", default=shutil.which("chromedriver"))
    ap.add_argument("--expect-route", default="cards")
    a = ap.parse_args()
    if not a.chromium or not a.chromedriver:
        print("FAIL: chromium or chromedriver not found")
        return 2

    port = free_port()
    profile = tempfile.mkdtemp(prefix="switchyard-chromium-")
    log = open(os.path.join(profile, "chromedriver.log"), "w")
    driver_proc = subprocess.Popen([a.chromedriver, f"--port={port}"], stdout=log, stderr=log)
    d = Driver(f"http://127.0.0.1:{port}")
    try:
        d.wait("chromedriver", lambda: d.call("GET", "/status", timeout=2).get("ready"), timeout=20)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": a.chromium,
                "args": FLAGS + [f"--user-data-dir={profile}/profile", "--window-size=1360,1000"],
            },
        }}}
        created = d.call("POST", "/session", caps, timeout=60)
        d.session = created["sessionId"]
        d.s("POST", "/url", {"url": a.url})

        # The page asks for a token; a wrong one is refused in words.
        d.wait("the sign-in form", lambda: d.find("#token") and d.script(
            "return !document.getElementById('signin').hidden"))
        token_field = d.find("#token")[0]
        d.s("POST", f"/element/{token_field}/value", {"text": "not-a-token"})
        d.s("POST", f"/element/{d.find('#signin-button')[0]}/click", {})
        d.wait("the refusal", lambda: "not accepted" in d.text("#signin-error"))

        token_field = d.find("#token")[0]
        d.s("POST", f"/element/{token_field}/value", {"text": a.token})
        d.s("POST", f"/element/{d.find('#signin-button')[0]}/click", {})

        matrix = d.wait("the migration matrix", lambda: (lambda t: t if a.expect_route in t else None)(
            d.text("#matrix")))
        for word in ("Route", "legacy", "rollout", "new", "Verdict"):
            if word not in matrix:
                raise Fail(f"matrix lacks {word!r}: {matrix!r}")
        verdict = d.wait("a verdict", lambda: d.text("#route-detail .verdict-line"))
        if not any(v in verdict for v in ("not ready", "ready", "insufficient data")):
            raise Fail(f"no verdict shown: {verdict!r}")
        diff = d.wait("a side-by-side diff", lambda: d.find("#sample table.sbs tr.r-replace") and d.text("#sample"))
        if '"price": 10' not in diff or '"price": 11' not in diff:
            raise Fail(f"the diff does not show both prices: {diff[:300]!r}")
        chart = d.wait("the mismatch chart", lambda: d.find("#route-detail svg.chart rect.bar"))
        audit = d.text("#audit")

        # The token lives in sessionStorage and never in the address.
        href, stored = d.script("return [location.href, sessionStorage.getItem('switchyard.token')]")
        if a.token in href:
            raise Fail("the token is in the URL")
        if stored != a.token:
            raise Fail("the token is not in sessionStorage")

        # Whole page in one picture: grow the window to the document's height.
        height = d.script("return Math.ceil(document.documentElement.scrollHeight)")
        d.s("POST", "/window/rect", {"width": 1360, "height": min(int(height) + 140, 6000)})
        time.sleep(0.5)
        png = base64.b64decode(d.s("GET", "/screenshot"))
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "wb") as f:
            f.write(png)
        first_line = verdict.splitlines()[0] if verdict else ""
        print(f"dashboard ok: matrix shows {a.expect_route}, verdict {first_line!r}, "
              f"{len(chart)} chart bars, audit {'present' if 'rollout' in audit else 'empty'}, "
              f"screenshot {a.out} ({len(png)} bytes)")
        return 0
    except Fail as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        if d.session:
            try:
                d.call("DELETE", f"/session/{d.session}", timeout=10)
            except Exception:
                pass
        driver_proc.terminate()
        try:
            driver_proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            driver_proc.kill()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
