-- Who ended a relationship (R-A1, R-A2): the chronology names them beside the time.
ALTER TABLE worker_relationships ADD COLUMN ended_by text;
ALTER TABLE org_relationships ADD COLUMN ended_by text;
