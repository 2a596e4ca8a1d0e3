-- R-T3: a RAG chosen by professional judgement keeps the matrix's rating beside it, with who, why and when;
-- R-T5: a next review date chosen by hand keeps its reason, who and when;
-- R-T2: Duty's record that an urgent referral's urgent actions are done (who, when).
ALTER TABLE tray_entries
    ADD COLUMN matrix_rag          text,
    ADD COLUMN rag_override_reason text,
    ADD COLUMN rag_overridden_by   text,
    ADD COLUMN rag_overridden_at   timestamptz,
    ADD COLUMN next_review_reason  text,
    ADD COLUMN next_review_set_by  text,
    ADD COLUMN next_review_set_at  timestamptz;
UPDATE tray_entries SET matrix_rag = rag;

ALTER TABLE cases
    ADD COLUMN urgent_actions_done_at timestamptz,
    ADD COLUMN urgent_actions_done_by text;
