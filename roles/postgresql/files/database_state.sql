-- Read by tasks/database.yml, connected to the app database as postgres: is each thing the
-- database tasks make already as they make it? Every check is false when what it looks at is
-- missing. ACLs are read as the modules read them: a NULL acl is the object's default one. The
-- privileges come from the role (postgresql_app_table_privileges, ..._sequence_privileges).
WITH roles AS (
  SELECT (SELECT oid FROM pg_roles WHERE rolname = %(owner)s) AS owner,
         (SELECT oid FROM pg_roles WHERE rolname = %(app)s) AS app
), db AS (
  SELECT d.datdba, d.encoding, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS acl
  FROM pg_database d WHERE d.datname = current_database()
), nsp AS (
  SELECT oid, nspowner, nspacl FROM pg_namespace WHERE nspname = %(schema)s
), wanted (kinds, acltype, objtype, privileges) AS (
  -- per kind of object: its relkinds, its acldefault type, its pg_default_acl type, the privileges
  VALUES (ARRAY['r', 'v', 'm', 'p', 'f']::"char"[], 'r'::"char", 'r'::"char", string_to_array(%(table_privileges)s, ',')),
         (ARRAY['S']::"char"[], 's'::"char", 'S'::"char", string_to_array(%(sequence_privileges)s, ','))
)
SELECT
  -- postgresql_db: the owner (the encoding it cannot change: a wrong one goes to it to fail there)
  coalesce((SELECT bool_and(db.datdba = roles.owner AND pg_encoding_to_char(db.encoding) = 'UTF8')
            FROM db, roles), false) AS database_ok,
  -- postgresql_schema: the owner
  coalesce((SELECT nsp.nspowner = roles.owner FROM nsp, roles), false) AS schema_ok,
  (SELECT roles.owner IS NOT NULL AND roles.app IS NOT NULL FROM roles)
  AND EXISTS (SELECT FROM nsp)
  -- the database: PUBLIC may neither connect nor make temporary tables, the app role may connect
  AND NOT EXISTS (SELECT FROM db WHERE (db.acl).grantee = 0 AND (db.acl).privilege_type IN ('CONNECT', 'TEMPORARY'))
  AND EXISTS (SELECT FROM db, roles WHERE (db.acl).grantee = roles.app AND (db.acl).privilege_type = 'CONNECT')
  -- the schema: USAGE for the app role
  AND EXISTS (SELECT FROM nsp, roles, aclexplode(coalesce(nsp.nspacl, acldefault('n', nsp.nspowner))) AS acl
              WHERE acl.grantee = roles.app AND acl.privilege_type = 'USAGE')
  -- every table and sequence of the schema: each privilege granted to the app role itself
  AND NOT EXISTS (
    SELECT FROM pg_class c, nsp, roles, wanted, unnest(wanted.privileges) AS privilege
    WHERE c.relnamespace = nsp.oid AND c.relkind = ANY (wanted.kinds)
      AND NOT EXISTS (SELECT FROM aclexplode(coalesce(c.relacl, acldefault(wanted.acltype, c.relowner))) AS acl
                      WHERE acl.grantee = roles.app AND acl.privilege_type = privilege))
  -- the default privileges of what the owner role creates there later: the same, for tables and sequences
  AND NOT EXISTS (
    SELECT FROM nsp, roles, wanted, unnest(wanted.privileges) AS privilege
    WHERE NOT EXISTS (
      SELECT FROM pg_default_acl da, aclexplode(da.defaclacl) AS acl
      WHERE da.defaclrole = roles.owner AND da.defaclnamespace = nsp.oid AND da.defaclobjtype = wanted.objtype
        AND acl.grantee = roles.app AND acl.privilege_type = privilege))
  AS grants_ok
