-- R-RQ9: the roles and teams each worker last acted with, as their signed identity said (every command's actor
-- is verified: issue #21 §1). Workflow keeps no directory of its own: this is what it knows of who can sign a
-- step before sending them its sign-off request. `since`: when these roles and teams were first seen.
CREATE TABLE known_workers (
    worker_id  text PRIMARY KEY,
    roles      text[] NOT NULL,
    team_ids   text[] NOT NULL,
    since      timestamptz NOT NULL
);
CREATE INDEX known_workers_teams ON known_workers USING gin (team_ids);
