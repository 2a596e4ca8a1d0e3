-- Issue #21 §6: the access audit also shows self-allocations and tray placements; only a break-glass
-- reason opens a record later (store.recent_access), so each row says which it is.
ALTER TABLE access_log ADD COLUMN kind text NOT NULL DEFAULT 'break_glass'
    CHECK (kind IN ('break_glass', 'self_allocation', 'tray_placement'));
