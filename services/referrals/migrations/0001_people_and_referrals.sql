-- People (R-P1): the record as a document, with the identity keys used for matching (R-P4).
CREATE TABLE people (
    person_id    uuid PRIMARY KEY,
    nhs_number   text UNIQUE,
    name_key     text,
    record       jsonb NOT NULL,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL,
    created_by   text NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text NOT NULL
);
CREATE INDEX people_name_key ON people (name_key) WHERE name_key IS NOT NULL;

-- Every change of a person's record, attributable to an actor and time.
CREATE TABLE person_changes (
    change_id    bigserial PRIMARY KEY,
    person_id    uuid NOT NULL REFERENCES people,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    what         text NOT NULL,
    message_id   uuid NOT NULL,
    fields       text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX person_changes_person ON person_changes (person_id, at);

-- Personal relationships (R-P2), e.g. a carer and the person they care for.
CREATE TABLE person_relationships (
    relationship_id  uuid PRIMARY KEY,
    person_id        uuid NOT NULL REFERENCES people,
    other_person_id  uuid NOT NULL REFERENCES people,
    relationship     text NOT NULL,
    is_main_carer    boolean NOT NULL DEFAULT false,
    start_date       date NOT NULL,
    end_date         date,
    end_reason       text,
    created_at       timestamptz NOT NULL,
    created_by       text NOT NULL
);
CREATE INDEX person_relationships_person ON person_relationships (person_id);

-- Accepted referrals; (source, referral_id) identifies a referral however often it is sent.
CREATE TABLE referrals (
    source               text NOT NULL,
    referral_id          text NOT NULL,
    message_id           uuid NOT NULL,
    person_id            uuid NOT NULL REFERENCES people,
    cared_for_person_id  uuid REFERENCES people,
    workflow_id          uuid NOT NULL,
    service              text NOT NULL,
    category             text NOT NULL,
    urgency              text NOT NULL,
    first_step_type      text NOT NULL,
    received_at          timestamptz NOT NULL,
    details              jsonb NOT NULL,
    accepted_at          timestamptz NOT NULL,
    PRIMARY KEY (source, referral_id)
);
CREATE INDEX referrals_person ON referrals (person_id);
