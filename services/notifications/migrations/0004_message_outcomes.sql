-- Messages to people through GOV.UK Notify, by the person's preferred method and format (issue #22 §3, §8).
-- A message may go to the person's representative; "phone" is a call the tray's team is asked to make (a
-- task), never "sent". Each record says who took it (provider) and, when the preferred channel could not
-- be used, which one that was and why (fallback_from, fallback_reason). No address or number is stored.
ALTER TABLE messages DROP CONSTRAINT messages_recipient_check;
ALTER TABLE messages ADD CONSTRAINT messages_recipient_check
    CHECK (recipient IN ('person', 'representative', 'referrer'));
ALTER TABLE messages DROP CONSTRAINT messages_channel_check;
ALTER TABLE messages ADD CONSTRAINT messages_channel_check CHECK (channel IN ('email', 'sms', 'letter', 'phone'));
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'queued_for_print', 'phone_call_task'));
ALTER TABLE messages ADD COLUMN provider text;          -- notify | smtp | print_queue | team
ALTER TABLE messages ADD COLUMN fallback_from text;     -- the preferred channel not used
ALTER TABLE messages ADD COLUMN fallback_reason text;   -- why: no_sms_provider, interpreter_needed…
ALTER TABLE messages ADD COLUMN task_id text;           -- the phone-call task in the team's inbox

-- R-T4 (seed 004): the waiting-list message says what regular contact to expect, which follows the RAG a
-- case is placed with (`tray.entry_added`, read just before its `message.requested`: same key, same topic).
CREATE TABLE tray_placements (
    entry_id    text PRIMARY KEY,
    rag         text NOT NULL
);
