-- R-T8: Review trays. A case whose next review is rescheduled (e.g. 12 months) waits in its team's
-- Review tray until the review date; a scheduler timer marks it due (due_at). One open entry per person.
CREATE TABLE review_tray_entries (
    entry_id        uuid PRIMARY KEY,
    person_id       uuid NOT NULL REFERENCES cases (person_id),
    team_id         text NOT NULL,
    review_due      date NOT NULL,
    reason          text NOT NULL,
    added_at        timestamptz NOT NULL,
    added_by        text NOT NULL,
    due_at          timestamptz,
    removed_at      timestamptz,
    removed_by      text,
    removed_reason  text,
    version         integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX review_tray_entries_one_open_per_person
    ON review_tray_entries (person_id) WHERE removed_at IS NULL;
CREATE INDEX review_tray_entries_open_by_team
    ON review_tray_entries (team_id, review_due) WHERE removed_at IS NULL;
