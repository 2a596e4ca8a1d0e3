-- R-A3, R-A4: the team a case was allocated for, so that team's managers may reassign the worker's work.
-- Rows from before this column (and a worker's own involvement) have none.
ALTER TABLE worker_relationships ADD COLUMN team_id text;
