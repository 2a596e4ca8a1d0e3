-- Tasks (issue #22 §1): every prompt the system raises (an overdue request, a tray review due, a case
-- note a worker is to be told of, open steps after a death, a renewal due, the R-K3 warning, an
-- escalation, a safe and well check) is an inbox item of kind 'task' for a named worker or team,
-- in the same table as requests and notifications. A task is about a person and, where there is
-- one, a step; `subject` names what completes it when that is observable ("step:<id>",
-- "request:<id>", "entry:<id>", "person:<id>").
ALTER TABLE inbox_items DROP CONSTRAINT inbox_items_kind_check;
ALTER TABLE inbox_items ADD CONSTRAINT inbox_items_kind_check CHECK (kind IN ('request', 'notification', 'task'));
ALTER TABLE inbox_items ALTER COLUMN step_id DROP NOT NULL;
ALTER TABLE inbox_items ALTER COLUMN step_type DROP NOT NULL;
ALTER TABLE inbox_items ADD COLUMN task_code text;   -- what the task is for, e.g. safe_and_well_check
ALTER TABLE inbox_items ADD COLUMN rule text;        -- the rule book id the prompt comes from, e.g. R-T5
ALTER TABLE inbox_items ADD COLUMN subject text;     -- what completes it when done elsewhere
CREATE INDEX inbox_items_open_tasks_by_subject ON inbox_items (subject) WHERE state = 'open' AND kind = 'task';
