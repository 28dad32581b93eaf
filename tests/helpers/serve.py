"""Constants of the review app's test gallery (imported by its conftest and tests)."""

INTEL = "intel_one-by-one-person-detection.mp4"
#: Frames of the Intel clip where its second person is on screen (test material README).
PERSON2 = (230, 440)
LOBBY_START = "2026-05-01T08:00:00+00:00"
DOOR_START = "2026-05-01T09:00:00+00:00"
