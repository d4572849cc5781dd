"""A small Hugging Face Hub protocol server for tests, bound to 127.0.0.1.

Enough of the Hub's HTTP API for the real huggingface_hub and datasets clients to create a dataset
repo, upload a folder in one commit (preupload, LFS batch + upload, commit), tag it, list refs,
read repo info, trees and paths-info, download files (with Range), and delete a repo. A commit that
names a parent other than the branch head is refused (412), as the Hub does. Tests can make it
fail: ``fail_commits`` (500 on commit), ``drop_commits`` (read the commit, then close the
connection without applying or answering: a connection killed mid-upload), ``fail_tags`` (the
next N tag requests answer 500). Not covered: Xet transfers
(tests set HF_HUB_DISABLE_XET=1), real authentication (any bearer token is accepted and recorded),
pull requests, and everything else the Hub does.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import yaml

LFS_SUFFIXES = (".parquet", ".png")


def validate_card_yaml(readme: str) -> list[str]:
    """The checks the Hub makes on a dataset card's front matter that selfpref relies on."""
    if not readme.startswith("---"):
        return []
    try:
        meta = yaml.safe_load(readme.split("---", 2)[1]) or {}
    except yaml.YAMLError as exc:
        return [f"YAML does not parse: {exc}"]
    errors = []
    if not isinstance(meta, dict):
        return ["metadata must be a mapping"]
    for key in ("tags", "task_categories", "size_categories"):
        if key in meta and not (isinstance(meta[key], list) and all(isinstance(v, str) for v in meta[key])):
            errors.append(f"'{key}' must be a list of strings")
    if "license" in meta and not isinstance(meta["license"], str):
        errors.append("'license' must be a string")
    for config in meta.get("configs", []):
        if "config_name" not in config or "data_files" not in config:
            errors.append("each config needs config_name and data_files")
    return errors


class Repo:
    def __init__(self) -> None:
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.private = False

    def resolve(self, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        return rev if rev in self.commits else None


class HubState:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.log: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        self.fail_commits = False
        self.drop_commits = False
        self.fail_tags = 0
        self.lock = threading.Lock()


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _drop(self) -> None:
        """Close the connection without an answer, as a network failure would."""
        import socket

        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- helpers
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data

    def _send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None,
              head: bool = False) -> None:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message}, head=head)

    def _record(self) -> None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            self.state.auth.add(auth[7:])
        self.state.log.append((self.command, urlparse(self.path).path))

    def _repo(self, repo_id: str, head: bool = False) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {repo_id}", head)
        return repo

    def _commit(self, repo: Repo, rev: str, head: bool = False) -> tuple[str, dict] | None:
        oid = repo.resolve(rev)
        if oid is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return None
        return oid, repo.commits[oid]

    def _lookup(self, repo_id: str, rev: str, head: bool = False) -> tuple[Repo, str, dict] | None:
        """(repo, commit oid, files) at ``rev``, or None after answering 404."""
        repo = self._repo(repo_id, head)
        found = self._commit(repo, rev, head) if repo else None
        return (repo, *found) if found else None

    def _entry(self, path: str, data: bytes) -> dict:
        entry = {"type": "file", "oid": _sha1(data), "size": len(data), "path": path}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _tree(self, files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        out, dirs = [], set()
        for path, data in sorted(files.items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:] if prefix else path
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                d = "/".join(([prefix] if prefix else []) + parts[:depth])
                if (recursive or depth == 1) and d not in dirs:
                    dirs.add(d)
                    out.append({"type": "directory", "oid": _sha1(d.encode()), "size": 0, "path": d})
            if recursive or len(parts) == 1:
                out.append(self._entry(path, data))
        return out

    # --- routes
    def do_HEAD(self) -> None:
        self._record()
        self._resolve(head=True)

    def do_GET(self) -> None:
        self._record()
        url = urlparse(self.path)
        path = url.path
        if path.startswith("/datasets/") and "/resolve/" in path:
            return self._resolve(head=False)
        if path == "/api/whoami-v2":
            return self._send(200, {"name": "tester", "type": "user", "orgs": [], "auth": {}})
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/refs$", path)
        if m:
            repo = self._repo(m.group(1))
            if repo:
                self._send(200, {
                    "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": o} for b, o in repo.branches.items()],
                    "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": o} for t, o in repo.tags.items()],
                    "converts": []})
            return
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)(?:/revision/(.+))?$", path)
        if m:
            found = self._lookup(m.group(1), m.group(2) or "main")
            if found:
                _, oid, files = found
                self._send(200, {"id": m.group(1), "sha": oid, "private": found[0].private, "disabled": False,
                                 "gated": False, "downloads": 0, "likes": 0, "tags": [],
                                 "lastModified": "2026-01-01T00:00:00.000Z",
                                 "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(files.items())]})
            return
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?$", path)
        if m:
            found = self._lookup(m.group(1), m.group(2))
            if found:
                files = found[2]
                recursive = parse_qs(url.query).get("recursive", ["false"])[0].lower() == "true"
                prefix = unquote(m.group(3) or "")
                entries = self._tree(files, prefix, recursive)
                if prefix and not entries and prefix not in files:
                    return self._error(404, "EntryNotFound", f"{prefix} does not exist")
                self._send(200, entries)
            return
        self._error(404, "NotFound", f"no route for GET {path}")

    def _resolve(self, head: bool) -> None:
        m = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", urlparse(self.path).path)
        if not m:
            return self._error(404, "NotFound", "bad resolve url", head)
        found = self._lookup(m.group(1), m.group(2), head)
        if not found:
            return
        _, oid, files = found
        name = unquote(m.group(3))
        if name not in files:
            return self._error(404, "EntryNotFound", f"{name} does not exist", head)
        data = files[name]
        entry = self._entry(name, data)
        headers = {"X-Repo-Commit": oid, "ETag": f'"{entry["oid"]}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if "lfs" in entry:
            headers["X-Linked-Etag"] = f'"{entry["lfs"]["oid"]}"'
            headers["X-Linked-Size"] = str(len(data))
        rng = self.headers.get("Range")
        if rng and not head:
            start_s, _, end_s = rng.replace("bytes=", "").partition("-")
            start = int(start_s) if start_s else max(len(data) - int(end_s), 0)
            end = int(end_s) if (end_s and start_s) else len(data) - 1
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, raw=data[start : end + 1], headers=headers)
        self._send(200, raw=data, headers=headers, head=head)

    def do_PUT(self) -> None:
        self._record()
        m = re.match(r"^/lfs-upload/([0-9a-f]{64})$", urlparse(self.path).path)
        data = self._body()
        if not m or hashlib.sha256(data).hexdigest() != m.group(1):
            return self._error(400, "BadRequest", "LFS upload does not match its oid")
        with self.state.lock:
            self.state.lfs[m.group(1)] = data
        self._send(200, {})

    def do_POST(self) -> None:
        self._record()
        path = urlparse(self.path).path
        body = self._body()
        if path == "/api/repos/create":
            req = json.loads(body)
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            url = f"http://{self.headers['Host']}/datasets/{repo_id}"
            with self.state.lock:
                if repo_id in self.state.repos:
                    return self._send(409, {"error": "You already created this dataset repo", "url": url})
                repo = Repo()
                repo.private = bool(req.get("private")) or req.get("visibility") == "private"
                root = _sha1(repo_id.encode())
                repo.commits[root] = {".gitattributes": b"*.parquet filter=lfs\n"}
                repo.branches["main"] = root
                self.state.repos[repo_id] = repo
            return self._send(200, {"url": url, "name": repo_id})
        if path == "/api/validate-yaml":
            errors = validate_card_yaml(json.loads(body).get("content", ""))
            return self._send(400 if errors else 200, {"errors": [{"message": e} for e in errors],
                                                        "warnings": []})
        m = re.match(r"^/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
        if m:
            req = json.loads(body)
            base = f"http://{self.headers['Host']}"
            objects = []
            for obj in req["objects"]:
                item = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in self.state.lfs:
                    item["actions"] = {"upload": {"href": f"{base}/lfs-upload/{obj['oid']}", "header": {}}}
                objects.append(item)
            return self._send(200, {"transfer": "basic", "objects": objects},
                              {"Content-Type": "application/vnd.git-lfs+json"})
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/preupload/(.+)$", path)
        if m:
            if not self._repo(m.group(1)):
                return
            files = json.loads(body)["files"]
            return self._send(200, {"files": [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                 "shouldIgnore": False} for f in files]})
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/commit/(.+)$", path)
        if m:
            return self._create_commit(m.group(1), unquote(m.group(2)), body)
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/tag/(.+)$", path)
        if m:
            found = self._lookup(m.group(1), m.group(2))
            if not found:
                return
            repo, oid, _ = found
            tag = json.loads(body)["tag"]
            if self.state.fail_tags > 0:
                self.state.fail_tags -= 1
                return self._error(500, "InternalError", "the tag failed (test server told to fail)")
            if tag in repo.tags:
                return self._error(409, "Conflict", f"tag {tag} already exists")
            repo.tags[tag] = oid
            return self._send(200, {})
        m = re.match(r"^/api/datasets/([^/]+/[^/]+)/paths-info/(.+)$", path)
        if m:
            found = self._lookup(m.group(1), m.group(2))
            if not found:
                return
            ctype = self.headers.get("Content-Type", "")
            paths = json.loads(body)["paths"] if "json" in ctype else parse_qs(body.decode()).get("paths", [])
            files, out = found[2], []
            for p in paths:
                p = p.strip("/")
                if p in files:
                    out.append(self._entry(p, files[p]))
                elif any(f.startswith(p + "/") for f in files):
                    out.append({"type": "directory", "oid": _sha1(p.encode()), "size": 0, "path": p})
            return self._send(200, out)
        self._error(404, "NotFound", f"no route for POST {path}")

    def do_DELETE(self) -> None:
        self._record()
        if urlparse(self.path).path != "/api/repos/delete":
            return self._error(404, "NotFound", f"no route for DELETE {self.path}")
        req = json.loads(self._body())
        repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
        with self.state.lock:
            if self.state.repos.pop(repo_id, None) is None:
                return self._error(404, "RepoNotFound", f"Repository Not Found for url: {repo_id}")
        self._send(200, {})

    def _create_commit(self, repo_id: str, rev: str, body: bytes) -> None:
        repo = self._repo(repo_id)
        if not repo:
            return
        if self.state.fail_commits:
            return self._error(500, "InternalError", "the commit failed (test server told to fail)")
        if self.state.drop_commits:
            return self._drop()
        found = self._commit(repo, rev)
        if not found:
            return
        files = dict(found[1])
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            op = json.loads(line)
            value = op["value"]
            if op["key"] == "header":
                parent = value.get("parentCommit")
                if parent and parent != found[0]:
                    return self._error(412, "PreconditionFailed",
                                       f"parent commit {parent} is not the head of {rev}")
            elif op["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif op["key"] == "lfsFile":
                if value["oid"] not in self.state.lfs:
                    return self._error(400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.state.lfs[value["oid"]]
            elif op["key"] == "deletedFile":
                files.pop(value["path"], None)
            elif op["key"] == "deletedFolder":
                files = {k: v for k, v in files.items() if not k.startswith(value["path"].rstrip("/") + "/")}
        errors = validate_card_yaml(files.get("README.md", b"").decode())
        if errors:
            return self._error(400, "BadRequest", f"Invalid metadata in README.md: {errors[0]}")
        oid = _sha1(json.dumps(sorted((k, _sha1(v)) for k, v in files.items())).encode() + found[0].encode())
        with self.state.lock:
            repo.commits[oid] = files
            repo.branches[unquote(rev) if unquote(rev) in repo.branches else "main"] = oid
        base = f"http://{self.headers['Host']}"
        self._send(200, {"commitUrl": f"{base}/datasets/{repo_id}/commit/{oid}", "commitOid": oid,
                         "pullRequestUrl": None})


def start_server() -> tuple[ThreadingHTTPServer, HubState, str]:
    state = HubState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state, f"http://127.0.0.1:{server.server_address[1]}"
