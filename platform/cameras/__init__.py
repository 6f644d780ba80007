"""The one-camera-one-file registry (一机一档): camera records, their validation, bulk import/export."""
