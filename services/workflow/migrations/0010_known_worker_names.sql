-- Issue #22 §9: the name the desk's staff directory gives each worker (account.listed `display_name`), so a
-- step read (and the PDF of its form) names who did what instead of showing an id.
ALTER TABLE known_workers ADD COLUMN display_name text;
