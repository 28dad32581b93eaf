"""csip_reid.gallery."""
