-- Whether a worker or their teams were sent anything about one person (a ground to open the record, R-P5):
-- one person's items, not a whole inbox (issue #18 §5).
CREATE INDEX inbox_items_person ON inbox_items (person_id, recipient_kind, recipient_id);
