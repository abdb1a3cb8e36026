-- 016_primary_delete_on_termination: a launch's primary may be an existing interface
-- (network.port_adopt, ports.c), which outlives its instance: its attachment's
-- DeleteOnTermination is false, and port_delete detaches it instead of deleting it. So
-- the flag of a primary is now what it says, not "always": the ports port_create made
-- (their instance's own) have it, as every one made from now on does (enis.c).
UPDATE enis SET delete_on_termination = true WHERE device_index = 0 AND NOT delete_on_termination;
-- A row inserted without the flag is a port_create's of a network process older than
-- this migration (still running while a newer one started): with it, as before, that
-- port goes with its instance. Every other insert and attach sets the flag itself.
ALTER TABLE enis ALTER COLUMN delete_on_termination SET DEFAULT true;
