#!/usr/bin/env python3
"""Cross-check: `pi0 download` and huggingface_hub's `hf_hub_download` write the same cache (blob names,
relative symlinks, refs/main) when both fetch the same files from tools/download/fake_hub.py.

Usage (a Python with huggingface_hub installed, e.g. /work/venvs/lerobot/bin/python):
    python compare_with_huggingface_hub.py PATH/TO/pi0
Checked on 2026-11-27 with huggingface_hub 1.33.0: identical layouts.
"""
import os
import subprocess
import sys
import tempfile

from huggingface_hub import hf_hub_download  # noqa: E402 (needs the package)


def layout(cache):
    out = []
    for dirpath, dirs, files in os.walk(cache):
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, cache)
            if rel.startswith(".locks") or n == "CACHEDIR.TAG":
                continue
            out.append((rel, os.readlink(p) if os.path.islink(p) else None,
                        open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else None))
    return sorted(out, key=lambda t: t[0])


def main():
    pi0 = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "served", "org", "m")
        os.makedirs(os.path.join(root, "sub"))
        files = {"config.json": b'{"type": "pi0"}\n', "model.safetensors": os.urandom(200_000),
                 "sub/x.safetensors": os.urandom(5000)}
        for f, data in files.items():
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(data)
        hub = subprocess.Popen([sys.executable, os.path.join(here, "fake_hub.py"), "--root", os.path.join(tmp, "served")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = None
        for line in hub.stdout:
            if line.startswith("PORT "):
                port = int(line.split()[1])
                break
        endpoint = "http://127.0.0.1:%d" % port
        try:
            os.environ["HF_ENDPOINT"] = endpoint
            py_cache, sw_cache = os.path.join(tmp, "py"), os.path.join(tmp, "sw")
            for f in files:
                hf_hub_download("org/m", f, cache_dir=py_cache, endpoint=endpoint)
            args = [pi0, "download", "org/m", "--endpoint", endpoint, "--cache", sw_cache]
            for f in files:
                args += ["--file", f]
            subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
            a, b = layout(py_cache), layout(sw_cache)
            if a != b:
                print("DIFFERENT\nhuggingface_hub:", [t[:2] for t in a], "\npi0:", [t[:2] for t in b])
                return 1
            print("same layout:", *[t[0] + (" -> " + t[1] if t[1] else "") for t in a], sep="\n  ")
            return 0
        finally:
            hub.stdin.close()
            hub.terminate()
            hub.wait()


if __name__ == "__main__":
    sys.exit(main())
