-- R-RQ9, R-RQ10: the desk's staff directory (web.events `account.listed`) fills known_workers for every account,
-- acted or not. `listed_at`: the `as_of` of the latest listing (NULL: only seen acting, never listed); once
-- listed, the directory is the truth and a command's actor no longer rewrites the roles and teams.
-- `active`: false for a disabled account.
ALTER TABLE known_workers
    ADD COLUMN active boolean NOT NULL DEFAULT true,
    ADD COLUMN listed_at timestamptz;
