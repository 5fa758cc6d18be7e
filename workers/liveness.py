"""How often workers prove they are alive and how long the reaper waits: the numbers alone, so
the CLI can show them as defaults without importing the database layer."""

from __future__ import annotations

#: The heartbeat thread writes `heartbeat_at` this often...
BEAT_EVERY_S = 2.0
#: ...and reads the cancel flag this often.
POLL_EVERY_S = 0.5
#: A run whose heartbeat is older than this lost its worker (30 missed heartbeats).
STALE_AFTER_S = 60.0
#: A queued run missing from the broker for this long is sent again.
RESEND_AFTER_S = 60.0
#: Seconds between two reaper passes.
REAP_EVERY_S = 15.0
#: A cancelled trainer that has not reached a step boundary after this long is wedged.
FORCE_CANCEL_AFTER_S = 60.0
