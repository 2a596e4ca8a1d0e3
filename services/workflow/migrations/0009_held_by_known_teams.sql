-- R-W14: a worker's open step that names no holding team (created before `held_by` was kept, or for another
-- worker by someone outside any team's step) is held by the teams workflow knows its worker belongs to (as last
-- seen acting: known_workers). Workers not known yet are filled when the desk's directory lists them
-- (services/workflow/store.py hold_unheld_steps). A team in the step's history still comes first.
UPDATE steps s SET provenance = s.provenance || jsonb_build_object('held_by', to_jsonb(k.team_ids))
FROM known_workers k
WHERE s.assignee_kind = 'worker' AND s.assignee_id = k.worker_id AND cardinality(k.team_ids) > 0
  AND s.state NOT IN ('finished', 'cancelled') AND NOT (s.provenance ? 'held_by');
