-- R-T4: the referrer is told as well as the person. `referrers` keeps, per person, the referrer of
-- their latest accepted referral (`referral.accepted` v2), only to send them a copy: the one piece
-- of contact data this service stores (referrals exposes no endpoint for it). A newer referral
-- replaces it, a referral without a referrer clears it.
CREATE TABLE referrers (
    person_id     text PRIMARY KEY,
    referral_id   text NOT NULL,
    accepted_at   timestamptz NOT NULL,
    name          text,
    email         text,
    phone         text
);

-- one delivery record per recipient of a message request: the person, and the referrer's copy
ALTER TABLE messages ADD COLUMN recipient text NOT NULL DEFAULT 'person'
    CHECK (recipient IN ('person', 'referrer'));
ALTER TABLE messages DROP CONSTRAINT messages_source_message_id_key;
ALTER TABLE messages ADD CONSTRAINT messages_one_per_recipient UNIQUE (source_message_id, recipient);
