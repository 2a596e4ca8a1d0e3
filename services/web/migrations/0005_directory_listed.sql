-- Issue #21: what the staff directory last said of each account (services/web/directory.py), so that the desk
-- lists at start-up only the accounts whose listing changed, not every account at every start. NULL: never
-- listed, or listed before this was noted: every account is listed once more, now with its name.
ALTER TABLE users ADD COLUMN listed jsonb;
