-- Version 2: each account's profile, encrypted by its owner with the
-- profile key (which the server never sees), replaced whole on each change
-- and deleted with the account.
ALTER TABLE accounts ADD COLUMN profile bytea;
