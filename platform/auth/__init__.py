"""Users' roles and API tokens; encryption of device secrets at rest."""
