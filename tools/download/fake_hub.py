#!/usr/bin/env python3
"""A tiny stand-in for the Hugging Face hub, for HubDownloadTests (127.0.0.1 only, standard library only).

Serves the files under ROOT/ORG/NAME/ with the hub's URL layout and headers, as huggingface_hub's
file_download.py expects them:
  HEAD|GET /ORG/NAME/resolve/REV/FILE
    - "LFS" files (*.safetensors, *.model): 302 to http://localhost:PORT/cdn/ORG/NAME/FILE (another host
      name for this server, as the hub's CDN is another host) with X-Repo-Commit,
      X-Linked-Etag: "<sha256>" and X-Linked-Size (like the hub's redirect to its CDN); files with "hop"
      in the name go through /cdn-hop/..., which redirects once more to /cdn/...;
    - other files: 200 with ETag: "<git blob sha1>", X-Repo-Commit, Content-Length, the content;
    - missing file: 404 with X-Error-Code: EntryNotFound; missing repo: 401 with X-Error-Code: RepoNotFound;
    - repo ORG == "old": 307 with a relative Location to /org/NAME/... (a renamed repo);
    - repo ORG == "gated": 401 (X-Error-Code: GatedRepo) unless "Authorization: Bearer <--token>".
    - REV must be "main" or the commit hash, else 404 RevisionNotFound.
  GET /cdn/ORG/NAME/FILE: the content, honouring "Range: bytes=N-" with 206 + Content-Range.
Fault modes (flags, or the --control file): --drop-once FILE (the first CDN GET of FILE sends half the body, then closes the
connection), --ignore-range (always 200 with the whole body), --corrupt FILE (one byte flipped in the CDN body).
Prints "FILE <path> <sha256> <git blob sha1>" per served file, then "PORT <n>" once listening; logs "METHOD PATH RANGE AUTH" lines to --log.
"""
import argparse
import hashlib
import http.server
import json
import os
import signal
import sys
import threading

LFS_SUFFIXES = (".safetensors", ".model")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--commit", default="0123456789abcdef0123456789abcdef01234567")
    ap.add_argument("--token", default="secret-token")
    ap.add_argument("--drop-once", action="append", default=[])
    ap.add_argument("--ignore-range", action="store_true")
    ap.add_argument("--corrupt", action="append", default=[])
    ap.add_argument("--log", default=None)
    ap.add_argument("--control", default=None,
                    help="JSON file re-read on every request, overriding the modes: "
                         '{"id": ..., "log": PATH, "drop_once": [FILE], "ignore_range": bool, "corrupt": [FILE]}')
    args = ap.parse_args()
    dropped = set()
    lock = threading.Lock()

    def modes():
        m = {"id": "", "log": args.log, "drop_once": args.drop_once, "ignore_range": args.ignore_range,
             "corrupt": args.corrupt}
        if args.control and os.path.exists(args.control):
            with open(args.control) as f:
                m.update(json.load(f))
        return m

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *a):
            pass

        def log_request_line(self):
            log = modes()["log"]
            if log:
                with lock, open(log, "a") as f:
                    f.write("%s %s %s %s\n" % (self.command, self.path, self.headers.get("Range", "-"),
                                               self.headers.get("Authorization", "-").replace(" ", "_")))

        def send(self, status, headers, body=b""):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

        def do_HEAD(self):
            self.handle_any()

        def do_GET(self):
            self.handle_any()

        def handle_any(self):
            self.log_request_line()
            parts = self.path.split("?")[0].split("/")
            if len(parts) >= 5 and parts[1] == "cdn-hop":  # one more redirect before the content
                port = self.server.server_address[1]
                return self.send(302, {"Location": "http://localhost:%d/cdn/%s" % (port, "/".join(parts[2:]))}, b"Found")
            if len(parts) >= 5 and parts[1] == "cdn":
                return self.cdn(parts[2], parts[3], "/".join(parts[4:]))
            if len(parts) >= 6 and parts[3] == "resolve":
                return self.resolve(parts[1], parts[2], parts[4], "/".join(parts[5:]))
            self.send(400, {}, b"bad path")

        def resolve(self, org, name, rev, file):
            if org == "old":  # a renamed repo: the hub answers with a relative redirect to the new name
                return self.send(307, {"Location": "/org/%s/resolve/%s/%s" % (name, rev, file)}, b"Moved")
            repo_dir = os.path.join(args.root, org, name)
            if not os.path.isdir(repo_dir):
                return self.send(401, {"X-Error-Code": "RepoNotFound"}, b"Repository not found")
            if org == "gated" and self.headers.get("Authorization") != "Bearer " + args.token:
                return self.send(401, {"X-Error-Code": "GatedRepo"}, b"Access to model is restricted")
            if rev not in ("main", args.commit):
                return self.send(404, {"X-Error-Code": "RevisionNotFound"}, b"Invalid rev id")
            path = os.path.join(repo_dir, file)
            if not os.path.isfile(path):
                return self.send(404, {"X-Error-Code": "EntryNotFound"}, b"Entry not found")
            data = open(path, "rb").read()
            common = {"X-Repo-Commit": args.commit}
            if file.endswith(LFS_SUFFIXES):
                port = self.server.server_address[1]
                common.update({"X-Linked-Etag": '"%s"' % hashlib.sha256(data).hexdigest(),
                               "X-Linked-Size": str(len(data)), "ETag": '"redirect-etag"',
                               "Location": "http://localhost:%d/%s/%s/%s/%s" % (
                                   port, "cdn-hop" if "hop" in file else "cdn", org, name, file)})
                return self.send(302, common, b"Found")
            sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            common.update({"ETag": '"%s"' % sha1})
            self.send(200, common, data)

        def cdn(self, org, name, file):
            path = os.path.join(args.root, org, name, file)
            if not os.path.isfile(path):
                return self.send(404, {}, b"no such blob")
            data = open(path, "rb").read()
            m = modes()
            if file in m["corrupt"] and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            rng = self.headers.get("Range")
            if rng and not m["ignore_range"] and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
                if start >= len(data):
                    return self.send(416, {"Content-Range": "bytes */%d" % len(data)})
            body = data[start:]
            headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes"}
            status = 200
            if start > 0:
                status = 206
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(data) - 1, len(data))
            with lock:
                key = (m["id"], file)  # once per control id
                drop = file in m["drop_once"] and key not in dropped
                if drop:
                    dropped.add(key)
            if drop and self.command == "GET":
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            self.send(status, headers, body)

    # A process started by Foundation's Process inherits the parent thread's blocked signals: unblock them so
    # SIGTERM works, and also exit when stdin closes (the test process ended or closed the pipe).
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(1024):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # The expected digests for the tests (hashlib, independent of the Swift code under test).
    for dirpath, _, names in sorted(os.walk(args.root)):
        for n in sorted(names):
            path = os.path.join(dirpath, n)
            data = open(path, "rb").read()
            print("FILE %s %s %s" % (os.path.relpath(path, args.root), hashlib.sha256(data).hexdigest(),
                                     hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()))
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
