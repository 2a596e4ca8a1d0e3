-- the starts of a batch of workflows are read by workflow id (GET /referrals/starts, R-W5)
CREATE INDEX referrals_workflow ON referrals (workflow_id);
