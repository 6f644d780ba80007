"""The object store: one interface, two backends — a directory (embedded default) and MinIO (S3).

Snapshots and photos live here; the database keeps only keys. Every object carries the SHA-256
of its content, so an upload through a presigned URL can be checked against what the agent said.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tianwang.errors import NotFound, ValidationFailed

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,511}$")


def check_key(key: str) -> str:
    """Keys are relative, '/'-separated, with no '..' part: they become paths in the directory store."""
    if not _KEY_RE.match(key) or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValidationFailed(f"invalid object key {key!r}", errors=[{"field": "key", "message": "bad key"}])
    return key


def snapshot_key(device_id: str, ts: dt.datetime, ext: str = "jpg") -> str:
    """`snapshots/{device_id}/{yyyy}/{mm}/{dd}/{ts}.jpg`, ts in UTC, sortable."""
    t = ts.astimezone(dt.UTC)
    stamp = t.strftime("%Y%m%dT%H%M%S") + f"{t.microsecond // 1000:03d}Z"
    return check_key(f"snapshots/{device_id}/{t:%Y}/{t:%m}/{t:%d}/{stamp}.{ext}")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None
    content_type: str
    modified: dt.datetime | None = None


class ObjectStore(Protocol):
    bucket: str

    def ensure_bucket(self) -> None: ...
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo: ...
    def get(self, key: str) -> bytes: ...
    def stat(self, key: str) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def presigned_get(self, key: str, expires_s: int) -> str: ...
    def presigned_put(self, key: str, expires_s: int) -> str: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectoryStore:
    """Objects as files under `root/bucket/`; metadata (sha256, type) in `root/.meta/bucket/`.

    Presigned URLs point at the API's `/objects/{bucket}/{key}` route and carry an expiry and an
    HMAC over (method, bucket, key, expiry), so they can be handed to agents and browsers exactly
    like MinIO's.
    """

    def __init__(self, root: Path, bucket: str, public_url: str, signing_key: bytes) -> None:
        self.root = Path(root)
        self.bucket = bucket
        self.public_url = public_url.rstrip("/")
        self._signing_key = signing_key

    def _path(self, key: str) -> Path:
        return self.root / self.bucket / check_key(key)

    def _meta(self, key: str) -> Path:
        return self.root / ".meta" / self.bucket / (check_key(key) + ".json")

    def ensure_bucket(self) -> None:
        (self.root / self.bucket).mkdir(parents=True, exist_ok=True)
        (self.root / ".meta" / self.bucket).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        digest = sha256_hex(data)
        self._atomic_write(self._path(key), data)
        meta = {"sha256": digest, "content_type": content_type, "size": len(data)}
        self._atomic_write(self._meta(key), json.dumps(meta).encode())
        return ObjectInfo(key, len(data), digest, content_type, dt.datetime.now(dt.UTC))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"object {key} not found") from None

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"object {key} not found") from None
        try:
            meta = json.loads(self._meta(key).read_text())
        except (FileNotFoundError, ValueError):
            meta = {}
        return ObjectInfo(
            key,
            st.st_size,
            meta.get("sha256"),
            meta.get("content_type", "application/octet-stream"),
            dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.root / self.bucket
        if not base.exists():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue
                key = Path(dirpath, name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield self.stat(key)

    # -- signed URLs -------------------------------------------------------------------------
    def _signature(self, method: str, key: str, expires: int) -> str:
        msg = f"{method}\n{self.bucket}\n{key}\n{expires}".encode()
        mac = hmac.new(self._signing_key, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _presign(self, method: str, key: str, expires_s: int) -> str:
        check_key(key)
        expires = int(time.time()) + int(expires_s)
        sig = self._signature(method, key, expires)
        q = urllib.parse.urlencode({"expires": expires, "signature": sig})
        return f"{self.public_url}/objects/{self.bucket}/{urllib.parse.quote(key)}?{q}"

    def presigned_get(self, key: str, expires_s: int) -> str:
        return self._presign("GET", key, expires_s)

    def presigned_put(self, key: str, expires_s: int) -> str:
        return self._presign("PUT", key, expires_s)

    def verify(self, method: str, key: str, expires: int, signature: str) -> bool:
        if expires < time.time():
            return False
        return hmac.compare_digest(self._signature(method, key, expires), signature)


class MinioStore:
    """MinIO (or any S3 server) through the `minio` SDK; sha256 kept as user metadata."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(5.0, timeout_s), read=timeout_s),
            maxsize=16,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self.bucket = bucket

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        digest = sha256_hex(data)
        self.client.put_object(
            self.bucket,
            check_key(key),
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            metadata={"sha256": digest},
        )
        return ObjectInfo(key, len(data), digest, content_type, dt.datetime.now(dt.UTC))

    def get(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, check_key(key))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFound(f"object {key} not found") from None
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def stat(self, key: str) -> ObjectInfo:
        from minio.error import S3Error

        try:
            st = self.client.stat_object(self.bucket, check_key(key))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                raise NotFound(f"object {key} not found") from None
            raise
        meta = {k.lower(): v for k, v in (st.metadata or {}).items()}
        return ObjectInfo(
            key,
            st.size or 0,
            meta.get("x-amz-meta-sha256"),
            st.content_type or "application/octet-stream",
            st.last_modified,
        )

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, check_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if obj.object_name is None or obj.is_dir:
                continue
            yield ObjectInfo(obj.object_name, obj.size or 0, None, "", obj.last_modified)

    def presigned_get(self, key: str, expires_s: int) -> str:
        return self.client.presigned_get_object(self.bucket, check_key(key), dt.timedelta(seconds=expires_s))

    def presigned_put(self, key: str, expires_s: int) -> str:
        return self.client.presigned_put_object(self.bucket, check_key(key), dt.timedelta(seconds=expires_s))


def open_store(spec: str, bucket: str, public_url: str, signing_key: bytes) -> ObjectStore:
    """`dir:PATH` or `s3://KEY:SECRET@HOST:PORT?secure=false&region=R`."""
    if spec.startswith("dir:"):
        return DirectoryStore(Path(spec[4:]), bucket, public_url, signing_key)
    if spec.startswith(("s3://", "minio://")):
        u = urllib.parse.urlsplit(spec)
        if not u.hostname or u.username is None or u.password is None:
            raise ValueError("object store URL needs s3://KEY:SECRET@HOST:PORT")
        q = urllib.parse.parse_qs(u.query)
        secure = q.get("secure", ["false"])[0].lower() in ("1", "true", "yes")
        endpoint = f"{u.hostname}:{u.port}" if u.port else u.hostname
        return MinioStore(
            endpoint,
            urllib.parse.unquote(u.username),
            urllib.parse.unquote(u.password),
            q.get("bucket", [bucket])[0],
            secure=secure,
            region=q.get("region", [None])[0],
        )
    raise ValueError(f"unknown object store {spec!r}: use dir:PATH or s3://KEY:SECRET@HOST:PORT")
