-- Sotto server schema, version 1 (PostgreSQL).
-- docs/what-the-server-stores.md explains every column, why it exists and
-- when it is deleted. Days are whole days since 1970-01-01 (UTC); no column
-- holds a finer time. No table records who sent an envelope.
-- Unsigned 32-bit ids (devices, registration ids, prekey ids) are bigint
-- with a range check, since integer is signed.

-- One row per account: its public identity key and the day it was created.
CREATE TABLE accounts (
    id                      bytea   PRIMARY KEY CHECK (length(id) = 16),
    identity_key            bytea   NOT NULL,
    created                 integer NOT NULL,
    unidentified_access_key bytea,
    username_hash           bytea   UNIQUE,
    -- The first envelope id a device added to this account gets: above
    -- every id a removed device of the account ever used.
    envelope_floor          bigint  NOT NULL DEFAULT 1
);

-- One row per device of an account.
CREATE TABLE devices (
    account         bytea   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id              bigint  NOT NULL CHECK (id BETWEEN 1 AND 4294967295),
    registration_id bigint  NOT NULL CHECK (registration_id BETWEEN 0 AND 4294967295),
    auth_key        bytea   NOT NULL,
    created         integer NOT NULL,
    last_seen       integer NOT NULL,
    -- The id the next envelope appended to this device's mailbox gets.
    -- Appends lock this row, so ids increase in commit order.
    next_envelope   bigint  NOT NULL,
    -- How many envelopes the mailbox holds, kept beside the rows so that
    -- Append checks the limit without counting them.
    mailbox_count   integer NOT NULL DEFAULT 0 CHECK (mailbox_count >= 0),
    PRIMARY KEY (account, id)
);

-- A device's signed EC prekey (kind 1) and last-resort KEM prekey (kind 2):
-- at most one of each, replaced by the device.
CREATE TABLE signed_prekeys (
    account   bytea    NOT NULL,
    device    bigint   NOT NULL,
    kind      smallint NOT NULL CHECK (kind IN (1, 2)),
    id        bigint   NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
    key       bytea    NOT NULL,
    signature bytea    NOT NULL,
    PRIMARY KEY (account, device, kind),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

-- One-time EC prekeys, each handed out once and deleted as it is.
CREATE TABLE ec_prekeys (
    account bytea  NOT NULL,
    device  bigint NOT NULL,
    id      bigint NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
    key     bytea  NOT NULL,
    PRIMARY KEY (account, device, id),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

-- One-time KEM prekeys, each handed out once and deleted as it is.
CREATE TABLE kem_prekeys (
    account   bytea  NOT NULL,
    device    bigint NOT NULL,
    id        bigint NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
    key       bytea  NOT NULL,
    signature bytea  NOT NULL,
    PRIMARY KEY (account, device, id),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

-- Mailboxes: sealed envelopes waiting for one device, deleted when the
-- device acks them or after their expiry day. The primary key serves
-- Read's range scans and Ack's deletes.
CREATE TABLE envelopes (
    account bytea   NOT NULL,
    device  bigint  NOT NULL,
    id      bigint  NOT NULL CHECK (id >= 1),
    expires integer NOT NULL,
    content bytea   NOT NULL,
    PRIMARY KEY (account, device, id),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

CREATE INDEX envelopes_expires ON envelopes (expires);
