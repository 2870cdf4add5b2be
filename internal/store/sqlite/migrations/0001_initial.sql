-- Sotto server schema, version 1 (SQLite).
-- docs/what-the-server-stores.md explains every column, why it exists and
-- when it is deleted. Days are whole days since 1970-01-01 (UTC); no column
-- holds a finer time. No table records who sent an envelope.

-- One row per account: its public identity key and the day it was created.
CREATE TABLE accounts (
    id                      BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    identity_key            BLOB    NOT NULL,
    created                 INTEGER NOT NULL,
    unidentified_access_key BLOB,
    username_hash           BLOB    UNIQUE,
    -- The first envelope id a device added to this account gets: above
    -- every id a removed device of the account ever used.
    envelope_floor          INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

-- One row per device of an account.
CREATE TABLE devices (
    account         BLOB    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id              INTEGER NOT NULL CHECK (id BETWEEN 1 AND 4294967295),
    registration_id INTEGER NOT NULL CHECK (registration_id BETWEEN 0 AND 4294967295),
    auth_key        BLOB    NOT NULL,
    created         INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    -- The id the next envelope appended to this device's mailbox gets.
    next_envelope   INTEGER NOT NULL,
    -- How many envelopes the mailbox holds, kept beside the rows so that
    -- Append checks the limit without counting them.
    mailbox_count   INTEGER NOT NULL DEFAULT 0 CHECK (mailbox_count >= 0),
    PRIMARY KEY (account, id)
) WITHOUT ROWID;

-- A device's signed EC prekey (kind 1) and last-resort KEM prekey (kind 2):
-- at most one of each, replaced by the device.
CREATE TABLE signed_prekeys (
    account   BLOB    NOT NULL,
    device    INTEGER NOT NULL,
    kind      INTEGER NOT NULL CHECK (kind IN (1, 2)),
    id        INTEGER NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
    key       BLOB    NOT NULL,
    signature BLOB    NOT NULL,
    PRIMARY KEY (account, device, kind),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

-- One-time EC prekeys, each handed out once and deleted as it is.
CREATE TABLE ec_prekeys (
    account BLOB    NOT NULL,
    device  INTEGER NOT NULL,
    id      INTEGER NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
    key     BLOB    NOT NULL,
    PRIMARY KEY (account, device, id),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- One-time KEM prekeys, each handed out once and deleted as it is.
CREATE TABLE kem_prekeys (
    account   BLOB    NOT NULL,
    device    INTEGER NOT NULL,
    id        INTEGER NOT NULL CHECK (id BETWEEN 0 AND 4294967295),
    key       BLOB    NOT NULL,
    signature BLOB    NOT NULL,
    PRIMARY KEY (account, device, id),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

-- Mailboxes: sealed envelopes waiting for one device, deleted when the
-- device acks them or after their expiry day. The primary key serves
-- Read's range scans and Ack's deletes; the table keeps a hidden rowid so
-- that its ~1 KiB rows stay out of the key's b-tree.
CREATE TABLE envelopes (
    account BLOB    NOT NULL,
    device  INTEGER NOT NULL,
    id      INTEGER NOT NULL CHECK (id >= 1),
    expires INTEGER NOT NULL,
    content BLOB    NOT NULL,
    PRIMARY KEY (account, device, id),
    FOREIGN KEY (account, device) REFERENCES devices (account, id) ON DELETE CASCADE
);

CREATE INDEX envelopes_expires ON envelopes (expires);
