"""What one API process holds: settings, the database, the object store and the secret box."""

from __future__ import annotations

from dataclasses import dataclass

from tianwang.auth.secrets_box import SecretBox, load_or_create_key
from tianwang.config import Settings
from tianwang.storage.db import Database
from tianwang.storage.objectstore import ObjectStore, open_store


@dataclass
class AppContext:
    settings: Settings
    db: Database
    store: ObjectStore
    box: SecretBox

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        configured = settings.secret_key.get_secret_value()
        if not configured and not settings.effective_database_url.startswith("sqlite"):
            # a key file per replica would leave each replica unable to read the others' passwords
            raise RuntimeError(
                "TIANWANG_SECRET_KEY must be set when the database is shared (PostgreSQL): "
                "every API replica needs the same key for camera passwords"
            )
        key = load_or_create_key(configured, settings.data_dir)
        box = SecretBox(key)
        db = Database(settings.effective_database_url)
        store = open_store(
            settings.effective_object_store, settings.bucket, settings.public_url, box.signing_key
        )
        return cls(settings, db, store, box)

    def close(self) -> None:
        self.db.dispose()
