"""The object store: one interface, two backends — a directory (embedded default) and MinIO (S3).

Snapshots and photos live here; the database keeps only keys. Every object carries the SHA-256
of its content, so an upload through a presigned URL can be checked against what the agent said.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import errno
import hashlib
import hmac
import io
import json
import os
import re
import stat as stat_mod
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tianwang.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed

_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,511}")
# S3's rules (lowercase, 3–63, no leading dot); they also keep a directory bucket from ever
# being `.meta` or `.tmp`, the store's own folders.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}")
_EXT_RE = re.compile(r"[A-Za-z0-9]{1,8}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_EXPIRY_S = 7 * 86400  # S3's own limit for presigned URLs, kept for both backends
DEFAULT_TYPE = "application/octet-stream"
UPLOAD_PREFIX = "incoming/"  # S3 staging keys of presigned uploads (see MinioStore.accept_upload)


class ObjectStoreUnavailable(ServiceUnavailable):
    """The S3 server cannot be reached, failed, or refused the request (credentials, policy)."""

    title = "Object store unavailable"
    type_ = "urn:tianwang:problem:object-store-unavailable"


def check_key(key: str) -> str:
    """Keys are relative, '/'-separated, with no '..' part: they become paths in the directory store."""
    # fullmatch, not match + `$`: `$` also matches before a trailing newline.
    if not _KEY_RE.fullmatch(key) or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValidationFailed(f"invalid object key {key!r}", errors=[{"field": "key", "message": "bad key"}])
    return key


def check_bucket(bucket: str) -> str:
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"invalid bucket name {bucket!r}: 3–63 of a-z 0-9 . -, starting with a letter/digit")
    return bucket


def _check_expiry(expires_s: int) -> int:
    if not 1 <= int(expires_s) <= MAX_EXPIRY_S:
        raise ValueError(f"presigned URL expiry must be 1..{MAX_EXPIRY_S} s, got {expires_s}")
    return int(expires_s)


def snapshot_key(device_id: str, ts: dt.datetime, ext: str = "jpg") -> str:
    """`snapshots/{device_id}/{yyyy}/{mm}/{dd}/{ts}.jpg`, ts in UTC to the millisecond, sortable."""
    # A device ID with '/' would add folders and break the layout; a naive time would be read
    # as the server's local zone, which is a guess.
    if not _SEGMENT_RE.fullmatch(device_id) or device_id in (".", ".."):
        raise ValidationFailed(
            f"invalid device_id for an object key: {device_id!r}",
            errors=[{"field": "device_id", "message": "one path segment of A-Z a-z 0-9 . _ -"}],
        )
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValidationFailed("snapshot time has no time zone", errors=[{"field": "ts", "message": "naive"}])
    if not _EXT_RE.fullmatch(ext):
        raise ValidationFailed(f"invalid extension {ext!r}", errors=[{"field": "ext", "message": "bad ext"}])
    t = ts.astimezone(dt.UTC)
    stamp = f"{t:%Y%m%dT%H%M%S}{t.microsecond // 1000:03d}Z"
    return check_key(f"snapshots/{device_id}/{t:%Y}/{t:%m}/{t:%d}/{stamp}.{ext}")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    # None when the backend has no trustworthy hash at hand (S3 listings; S3 objects uploaded
    # through a presigned URL without the header).
    sha256: str | None
    content_type: str
    modified: dt.datetime | None = None


class ObjectStore(Protocol):
    bucket: str

    def ensure_bucket(self) -> None: ...
    def put(self, key: str, data: bytes, content_type: str = DEFAULT_TYPE) -> ObjectInfo: ...
    def get(self, key: str) -> bytes: ...
    def read(self, key: str) -> tuple[bytes, ObjectInfo]: ...
    def stat(self, key: str) -> ObjectInfo: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def presigned_get(self, key: str, expires_s: int) -> str: ...
    def presigned_put(self, key: str, expires_s: int) -> str: ...
    def presigned_upload(self, key: str, expires_s: int, sha256: str) -> str: ...
    def accept_upload(self, key: str, sha256: str) -> str: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_CLASH = (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY)


class DirectoryStore:
    """Objects as files under `root/bucket/`; metadata (sha256, type) in `root/.meta/bucket/`.

    Each write goes to `root/.tmp/` and is renamed into place, so a reader sees the old object
    or the new one, never half of one, and listings never see temporary files. The metadata
    file mirrors the object's path and names the inode, size and mtime of the file it
    describes; if they do not match (a write in progress, a crash between the two renames, a
    file copied in by hand) the hash is computed from the content instead of being trusted.

    Presigned URLs point at the API's `/objects/{bucket}/{key}` route and carry an expiry and an
    HMAC over (method, bucket, key, expiry), so they can be handed to agents and browsers exactly
    like MinIO's.
    """

    def __init__(self, root: Path, bucket: str, public_url: str, signing_key: bytes) -> None:
        # Resolved once: a relative root must not follow later changes of the working directory.
        self.root = Path(root).resolve()
        self.bucket = check_bucket(bucket)
        self.public_url = public_url.rstrip("/")
        self._signing_key = signing_key
        self._base = self.root / self.bucket
        self._meta_base = self.root / ".meta" / self.bucket
        self._tmp = self.root / ".tmp"

    def _path(self, key: str) -> Path:
        return self._base / check_key(key)

    def _meta(self, key: str) -> Path:
        return self._meta_base / check_key(key)

    def ensure_bucket(self) -> None:
        for d in (self._base, self._meta_base, self._tmp):
            d.mkdir(parents=True, exist_ok=True)

    def _write_tmp(self, data: bytes) -> tuple[Path, os.stat_result]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
                st = os.fstat(f.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name), st

    def put_once(self, key: str, data: bytes, content_type: str = DEFAULT_TYPE) -> ObjectInfo:
        """Store `data` at `key` unless an object is there already: a presigned upload is one-time.

        The same bytes again (an agent retrying a PUT whose answer it lost) are taken as done; other
        bytes are refused (Conflict), so a stored, recorded picture can never be replaced.
        """
        path = self._path(key)
        digest = sha256_hex(data)
        content_type = content_type or DEFAULT_TYPE
        tmp, st = self._write_tmp(data)
        try:
            for attempt in range(5):
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.link(tmp, path)  # atomic, and fails when the key exists: first writer wins
                    break
                except FileExistsError:
                    info = self.stat(key)
                    if info.sha256 != digest:
                        raise Conflict(
                            f"object {key} is already stored: an upload URL is good for one upload"
                        ) from None
                    return info
                except FileNotFoundError:
                    if attempt == 4:
                        raise
                except OSError as e:
                    if e.errno in _CLASH:
                        raise Conflict(f"object key {key} clashes with an existing key's folder") from None
                    raise
        finally:
            tmp.unlink(missing_ok=True)
        meta = {
            "sha256": digest,
            "content_type": content_type,
            "size": st.st_size,
            "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
        }
        mtmp, _ = self._write_tmp(json.dumps(meta).encode())
        self._place(mtmp, self._meta(key), key)
        return ObjectInfo(
            key, len(data), digest, content_type, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
        )

    def presigned_upload(self, key: str, expires_s: int, sha256: str) -> str:
        """A one-time PUT URL for `key` that takes only content whose SHA-256 is `sha256`."""
        return self.presigned_put(key, expires_s, sha256)

    def accept_upload(self, key: str, sha256: str) -> str:
        """The SHA-256 of what was uploaded at `key` (NotFound if nothing): the PUT already stored it
        for good, so this only reads the hash this store wrote for this very file (else computes it)."""
        digest = self.stat(key).sha256
        assert digest is not None  # the directory store always knows or computes it
        return digest

    def _place(self, tmp: Path, path: Path, key: str) -> None:
        """Rename `tmp` to `path`, making folders; a concurrent delete may prune them, so retry."""
        try:
            for attempt in range(5):
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, path)
                    return
                except FileNotFoundError:
                    if attempt == 4 or not tmp.exists():
                        raise
                except OSError as e:
                    if e.errno in _CLASH:
                        # `a` and `a/b` cannot both be objects here (they can in S3).
                        raise Conflict(f"object key {key} clashes with an existing key's folder") from None
                    raise
        finally:
            tmp.unlink(missing_ok=True)

    def put(self, key: str, data: bytes, content_type: str = DEFAULT_TYPE) -> ObjectInfo:
        path, meta_path = self._path(key), self._meta(key)
        digest = sha256_hex(data)
        content_type = content_type or DEFAULT_TYPE
        tmp, st = self._write_tmp(data)
        self._place(tmp, path, key)
        meta = {
            "sha256": digest,
            "content_type": content_type,
            "size": st.st_size,
            "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns,
        }
        mtmp, _ = self._write_tmp(json.dumps(meta).encode())
        self._place(mtmp, meta_path, key)
        modified = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
        return ObjectInfo(key, len(data), digest, content_type, modified)

    @contextmanager
    def _open(self, key: str) -> Iterator[tuple[io.BufferedReader, os.stat_result]]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"object {key} not found") from None
        with f:
            st = os.fstat(f.fileno())
            if not stat_mod.S_ISREG(st.st_mode):
                raise NotFound(f"object {key} not found")
            yield f, st

    def _info(self, key: str, st: os.stat_result, content: bytes | io.BufferedReader) -> ObjectInfo:
        try:
            meta: dict[str, Any] = json.loads(self._meta(key).read_bytes())
        except (OSError, ValueError):
            meta = {}
        fresh = (
            isinstance(meta, dict)
            and meta.get("ino") == st.st_ino
            and meta.get("size") == st.st_size
            and meta.get("mtime_ns") == st.st_mtime_ns
            and isinstance(meta.get("sha256"), str)
            and _SHA256_RE.fullmatch(meta["sha256"]) is not None
        )
        if fresh:
            digest, ctype = meta["sha256"], str(meta.get("content_type") or DEFAULT_TYPE)
        else:
            if isinstance(content, bytes):
                digest = sha256_hex(content)
            else:
                digest = hashlib.file_digest(content, "sha256").hexdigest()
            ctype = DEFAULT_TYPE
        return ObjectInfo(key, st.st_size, digest, ctype, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    def read(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Content and its info from one open file, so they describe the same version."""
        with self._open(key) as (f, st):
            data = f.read()
        return data, self._info(key, st, data)

    def get(self, key: str) -> bytes:
        with self._open(key) as (f, _st):
            return f.read()

    def stat(self, key: str) -> ObjectInfo:
        with self._open(key) as (f, st):
            return self._info(key, st, f)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path, meta = self._path(key), self._meta(key)
        for p, base in ((path, self._base), (meta, self._meta_base)):
            try:
                p.unlink(missing_ok=True)
            except IsADirectoryError:
                continue  # a folder of other keys, not an object: nothing to delete
            except NotADirectoryError:
                continue
            # Prune folders left empty, so listings do not walk a growing tree of dead dates.
            parent = p.parent
            while parent != base and base in parent.parents:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, in byte order of the key, as S3 lists them."""
        # Start at the deepest folder the prefix names, instead of walking the whole bucket.
        head, _, _ = prefix.rpartition("/")
        try:
            start = self._base / check_key(head) if head else self._base
        except ValidationFailed:
            return  # no valid key can start with this prefix
        yield from self._walk(start, head + "/" if head else "", prefix)

    def _walk(self, folder: Path, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        # A folder `a` sorts as `a/`, so the walk yields keys in the same order as sorting them.
        items = sorted((e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e) for e in entries)
        for name, entry in items:
            key = rel + name
            if name.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif key.startswith(prefix) and entry.is_file(follow_symlinks=False):
                try:
                    yield self.stat(key)
                except (NotFound, ValidationFailed):
                    continue  # deleted meanwhile, or a file not made by this store

    # -- signed URLs -------------------------------------------------------------------------
    def _signature(self, method: str, key: str, expires: int, sha256: str | None = None) -> str:
        msg = f"{method}\n{self.bucket}\n{key}\n{expires}"
        if sha256 is not None:  # a PUT bound to its content: only these bytes may be uploaded
            msg += f"\n{sha256}"
        mac = hmac.new(self._signing_key, msg.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _presign(self, method: str, key: str, expires_s: int, sha256: str | None = None) -> str:
        check_key(key)
        if sha256 is not None and not _SHA256_RE.fullmatch(sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        expires = int(time.time()) + _check_expiry(expires_s)
        params: dict[str, str | int] = {"expires": expires}
        if sha256 is not None:
            params["sha256"] = sha256
        params["signature"] = self._signature(method, key, expires, sha256)
        q = urllib.parse.urlencode(params)
        return f"{self.public_url}/objects/{self.bucket}/{urllib.parse.quote(key)}?{q}"

    def presigned_get(self, key: str, expires_s: int) -> str:
        return self._presign("GET", key, expires_s)

    def presigned_put(self, key: str, expires_s: int, sha256: str | None = None) -> str:
        """A one-time upload URL (see `put_once`); with `sha256`, only content of that hash is taken."""
        return self._presign("PUT", key, expires_s, sha256)

    def verify(self, method: str, key: str, expires: int, signature: str, sha256: str | None = None) -> bool:
        if expires < time.time():
            return False
        # Bytes, not str: compare_digest raises TypeError on non-ASCII str, and the signature
        # comes from the query string.
        expected = self._signature(method, key, expires, sha256).encode()
        return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


_MISSING_OBJECT = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class MinioStore:
    """MinIO (or any S3 server) through the `minio` SDK; sha256 kept as user metadata.

    Every SDK failure becomes a typed error: a missing object or bucket `NotFound`, anything
    else (unreachable, 5xx, refused credentials) `ObjectStoreUnavailable`.
    """

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
        self.endpoint = endpoint
        self.bucket = check_bucket(bucket)

    @contextmanager
    def _mapped(self, key: str | None) -> Iterator[None]:
        import urllib3.exceptions
        from minio.error import MinioException, S3Error

        try:
            yield
        except S3Error as e:
            if e.code == "NoSuchBucket":
                raise NotFound(f"bucket {self.bucket} does not exist") from None
            if key is not None and e.code in _MISSING_OBJECT:
                raise NotFound(f"object {key} not found") from None
            raise ObjectStoreUnavailable(f"object store {self.endpoint} refused: {e.code}") from e
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as e:
            raise ObjectStoreUnavailable(f"object store {self.endpoint} failed: {type(e).__name__}") from e

    def ensure_bucket(self) -> None:
        from minio.error import S3Error

        with self._mapped(None):
            if self.client.bucket_exists(self.bucket):
                return
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as e:
                # another process made it between the two calls
                if e.code != "BucketAlreadyOwnedByYou":
                    raise

    def put(self, key: str, data: bytes, content_type: str = DEFAULT_TYPE) -> ObjectInfo:
        digest = sha256_hex(data)
        content_type = content_type or DEFAULT_TYPE
        with self._mapped(key):
            self.client.put_object(
                self.bucket,
                check_key(key),
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata={"sha256": digest},
            )
        return ObjectInfo(key, len(data), digest, content_type, dt.datetime.now(dt.UTC))

    @staticmethod
    def _header_info(key: str, size: int, headers: Any) -> ObjectInfo:
        h = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        # Whoever holds a presigned PUT URL may set this header: trust its form, not its truth.
        sha = h.get("x-amz-meta-sha256", "").lower()
        modified = None
        if h.get("last-modified"):
            try:
                modified = email.utils.parsedate_to_datetime(h["last-modified"])
            except (TypeError, ValueError):
                modified = None
        return ObjectInfo(
            key,
            size,
            sha if _SHA256_RE.fullmatch(sha) else None,
            h.get("content-type") or DEFAULT_TYPE,
            modified,
        )

    def read(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Content and info from one GET: the response headers carry the metadata."""
        with self._mapped(key):
            resp = self.client.get_object(self.bucket, check_key(key))
            try:
                data = resp.read()
                headers = resp.headers
            finally:
                resp.close()
                resp.release_conn()
        return data, self._header_info(key, len(data), headers)

    def get(self, key: str) -> bytes:
        return self.read(key)[0]

    def stat(self, key: str) -> ObjectInfo:
        with self._mapped(key):
            st = self.client.stat_object(self.bucket, check_key(key))
        info = self._header_info(key, st.size or 0, st.metadata)
        return ObjectInfo(key, info.size, info.sha256, st.content_type or DEFAULT_TYPE, st.last_modified)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        with self._mapped(key):
            self.client.remove_object(self.bucket, check_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Keys and sizes only: S3 listings carry neither the type nor the user metadata."""
        with self._mapped(None):
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name is None or obj.is_dir:
                    continue
                yield ObjectInfo(obj.object_name, obj.size or 0, None, "", obj.last_modified)

    # The SDK may ask the server for the bucket's region before signing, so these can fail too.
    def presigned_get(self, key: str, expires_s: int) -> str:
        expiry = dt.timedelta(seconds=_check_expiry(expires_s))
        with self._mapped(key):
            return self.client.presigned_get_object(self.bucket, check_key(key), expiry)

    def presigned_put(self, key: str, expires_s: int) -> str:
        expiry = dt.timedelta(seconds=_check_expiry(expires_s))
        with self._mapped(key):
            return self.client.presigned_put_object(self.bucket, check_key(key), expiry)

    # An S3 presigned PUT signs the host only: it cannot be bound to a hash, cannot be made
    # one-time, and works until it expires. So an upload goes to a staging key, and only the API
    # writes the final key, once it has checked the content's hash (`accept_upload`): a URL used
    # again later writes to a staging object nobody reads any more.
    @staticmethod
    def staging_key(key: str) -> str:
        return check_key(f"{UPLOAD_PREFIX}{key}")

    def presigned_upload(self, key: str, expires_s: int, sha256: str) -> str:
        return self.presigned_put(self.staging_key(check_key(key)), expires_s)

    def accept_upload(self, key: str, sha256: str) -> str:
        """The SHA-256 of the content at `key`, computed (the metadata header is the uploader's word);
        an upload still at its staging key becomes `key` first, if and only if its hash is `sha256`.
        NotFound when nothing was uploaded."""
        try:
            return sha256_hex(self.get(key))
        except NotFound:
            pass
        staged = self.staging_key(key)
        data, info = self.read(staged)
        digest = sha256_hex(data)
        if digest == sha256:
            self.put(key, data, info.content_type)
            self.delete(staged)
        return digest


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def open_store(spec: str, bucket: str, public_url: str, signing_key: bytes) -> ObjectStore:
    """`dir:PATH` or `s3://KEY:SECRET@HOST:PORT?secure=false&region=R&bucket=B`.

    Raises ValueError with a readable message; the message never repeats the spec, which
    holds a secret.
    """
    if spec.startswith("dir:"):
        if not spec[4:].strip():
            raise ValueError("object store `dir:` needs a path, e.g. dir:/var/lib/tianwang/objects")
        return DirectoryStore(Path(spec[4:]), bucket, public_url, signing_key)
    scheme = spec.partition("://")[0] if "://" in spec else ""
    if scheme in ("s3", "minio"):
        u = urllib.parse.urlsplit(spec)
        if not u.hostname or not u.username or u.password is None:
            raise ValueError("object store URL needs s3://KEY:SECRET@HOST:PORT")
        try:
            port = u.port
        except ValueError:
            raise ValueError("object store URL has an invalid port (want 1..65535)") from None
        if u.path not in ("", "/"):
            raise ValueError("object store URL takes no path: give the bucket as ?bucket=NAME")
        try:
            q = urllib.parse.parse_qs(u.query, keep_blank_values=True, strict_parsing=bool(u.query))
        except ValueError:
            raise ValueError("object store URL has a malformed query string") from None
        unknown = set(q) - {"secure", "region", "bucket"}
        if unknown:
            known = "secure, region, bucket"
            raise ValueError(f"object store URL: unknown option(s) {sorted(unknown)}; known: {known}")
        secure_s = q.get("secure", ["false"])[-1].lower()
        if secure_s not in _TRUE + _FALSE:
            raise ValueError(f"object store URL: secure={secure_s!r} is not true or false")
        host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
        endpoint = f"{host}:{port}" if port else host
        return MinioStore(
            endpoint,
            urllib.parse.unquote(u.username),
            urllib.parse.unquote(u.password),
            q.get("bucket", [bucket])[-1],
            secure=secure_s in _TRUE,
            region=q.get("region", [None])[-1] or None,
        )
    shown = f"{scheme}://…" if scheme else (spec[:16] + "…" if len(spec) > 16 else spec)
    raise ValueError(f"unknown object store {shown!r}: use dir:PATH or s3://KEY:SECRET@HOST:PORT")
