-- Where the housekeeping rotation (internal/housekeeping) stands: the id of the last tenant
-- of the last batch it claimed. The rotation runs once per cluster as a River periodic job
-- on whichever node River hands it to, so its position lives here, not in a process: a
-- restart or a new leader continues with the next tenant instead of the first.
--
-- Global, one row: it holds a tenant id and a time, no tenant data, so no row-level
-- security (there is no tenant to scope it to). gatehouse_app may read and move the
-- position but not add or remove the row.
CREATE TABLE housekeeping_rotation (
    id             boolean     PRIMARY KEY DEFAULT true CHECK (id),
    last_tenant_id uuid,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE housekeeping_rotation IS
    'Global, one row: position of the housekeeping rotation (last tenant id claimed).';
REVOKE INSERT, DELETE ON housekeeping_rotation FROM gatehouse_app;
INSERT INTO housekeeping_rotation DEFAULT VALUES;
