-- The origin (scheme://host:port) of the instance URL an integration's
-- password and client secret were entered for. Steward refuses to send
-- stored credentials anywhere else: moving an integration to another host
-- requires entering them again (issue 9).
--
-- Existing rows get the origin of their current instance URL: the part
-- before the first '/' after "://". URLs are checked to carry no user info,
-- query or fragment, so that part is the origin; Go normalizes letter case
-- and default ports when it compares (store.Origin).
ALTER TABLE integration ADD COLUMN credential_origin TEXT COLLATE "C" NOT NULL DEFAULT '';

-- (SQLite's instr is PostgreSQL's strpos.)
UPDATE integration SET credential_origin = CASE
    WHEN strpos(instance_url, '://') = 0 THEN ''
    WHEN strpos(substr(instance_url, strpos(instance_url, '://') + 3), '/') = 0 THEN instance_url
    ELSE substr(instance_url, 1, strpos(instance_url, '://') + 1 + strpos(substr(instance_url, strpos(instance_url, '://') + 3), '/'))
END;
