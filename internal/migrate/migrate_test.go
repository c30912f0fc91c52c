package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	gomigrate "github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-id/gatehouse/db"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

type schemaState struct {
	Tables  map[string]string // table -> owner
	Version uint
}

func state(t *testing.T, d *testutil.DB) schemaState {
	t.Helper()
	ctx := context.Background()
	rows, err := d.Admin.Query(ctx, `SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	s := schemaState{Tables: map[string]string{}}
	for rows.Next() {
		var n, o string
		if err := rows.Scan(&n, &o); err != nil {
			t.Fatal(err)
		}
		s.Tables[n] = o
	}
	mg, err := migrate.Open(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	v, dirty, err := mg.Version()
	if err != nil || dirty {
		t.Fatalf("version: %v dirty=%v", err, dirty)
	}
	s.Version = v
	return s
}

// TestUpDownUp: migrations apply, revert completely, and apply again to the same schema;
// running up twice is a no-op.
func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.EmptyDB(t)

	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatal(err)
	}
	first := state(t, d)
	firstSchema := snapshot(t, d)
	if first.Version != migrate.Latest() || migrate.Latest() == 0 {
		t.Fatalf("version %d, latest %d", first.Version, migrate.Latest())
	}
	for tbl, owner := range first.Tables {
		if owner != migrate.OwnerRole {
			t.Errorf("table %s owned by %s, want %s", tbl, owner, migrate.OwnerRole)
		}
	}
	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatalf("second up: %v", err)
	}

	if err := migrate.DownAll(ctx, d.AdminURL); err != nil {
		t.Fatal(err)
	}
	down := state(t, d)
	if d := cmp.Diff(map[string]string{"schema_migrations": migrate.OwnerRole}, down.Tables); d != "" || down.Version != 0 {
		t.Fatalf("after down, version %d, tables (-want +got):\n%s", down.Version, d)
	}

	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatalf("up after down: %v", err)
	}
	if d := cmp.Diff(first, state(t, d)); d != "" {
		t.Fatalf("up -> down -> up differs (-first +again):\n%s", d)
	}
	if d := cmp.Diff(firstSchema, snapshot(t, d)); d != "" {
		t.Fatalf("schema after up -> down -> up differs (-first +again):\n%s", d)
	}
}

// TestStepwiseDown: each down migration reverts exactly its up migration. The migrations
// are applied one at a time with the full schema captured before each; then each is
// reverted one at a time and the schema must equal the one captured before its up step,
// down to column defaults, constraint and policy expressions, function bodies and grants.
// It runs over whatever migrations are embedded.
func TestStepwiseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.EmptyDB(t)
	if err := migrate.EnsureRoles(ctx, d.AdminURL); err != nil {
		t.Fatal(err)
	}
	up := openStepper(t, d.AdminURL)
	var versions []uint             // versions reached, in order
	before := map[uint]schema{}     // version -> schema before its up step
	previous := map[uint]uint{0: 0} // version -> the version before it
	cur := uint(0)
	for {
		s := snapshot(t, d)
		err := up.Steps(1)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, gomigrate.ErrNoChange) {
			break // no migration after cur
		}
		if err != nil {
			t.Fatalf("up from %d: %v", cur, err)
		}
		next := stepperVersion(t, up)
		if next <= cur {
			t.Fatalf("up from %d reached %d", cur, next)
		}
		before[next], previous[next] = s, cur
		versions = append(versions, next)
		cur = next
	}
	if cur != migrate.Latest() || len(versions) == 0 {
		t.Fatalf("stepping up stopped at %d, latest is %d", cur, migrate.Latest())
	}

	mg, err := migrate.Open(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	for i := len(versions) - 1; i >= 0; i-- {
		v := versions[i]
		if err := mg.Down(1); err != nil {
			t.Fatalf("down from %d: %v", v, err)
		}
		got, dirty, err := mg.Version()
		if err != nil || dirty || got != previous[v] {
			t.Fatalf("down from %d reached %d (dirty %v, %v), want %d", v, got, dirty, err, previous[v])
		}
		if diff := cmp.Diff(before[v], snapshot(t, d)); diff != "" {
			t.Errorf("down migration %d does not restore the schema before its up migration (-before up +after down):\n%s", v, diff)
		}
	}
}

// openStepper returns a golang-migrate instance over the embedded migrations that runs
// them as gatehouse_owner, like migrate.Open does; migrate.Migrator has no single step up.
func openStepper(t *testing.T, adminURL string) *gomigrate.Migrate {
	t.Helper()
	cc, err := pgx.ParseConfig(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	cc.RuntimeParams["role"] = migrate.OwnerRole
	sqlDB := stdlib.OpenDB(*cc)
	drv, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{})
	if err != nil {
		sqlDB.Close()
		t.Fatal(err)
	}
	src, err := iofs.New(db.Migrations, "migrations")
	if err != nil {
		sqlDB.Close()
		t.Fatal(err)
	}
	m, err := gomigrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		sqlDB.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = m.Close() })
	return m
}

func stepperVersion(t *testing.T, m *gomigrate.Migrate) uint {
	t.Helper()
	v, dirty, err := m.Version()
	if errors.Is(err, gomigrate.ErrNilVersion) {
		return 0
	}
	if err != nil || dirty {
		t.Fatalf("version %d: %v (dirty %v)", v, err, dirty)
	}
	return v
}

// schema is everything the migrations define in the database, by name (never by oid), in
// a form whose cmp.Diff reads like DDL.
type schema struct {
	Schemas           map[string]string   // name -> owner and privileges
	Extensions        map[string]string   // name -> version and schema
	Types             map[string]string   // enums, domains, composite and range types
	Relations         map[string]relation // schema.name of tables, views, sequences
	Functions         map[string]string   // schema.name(args) -> owner, privileges, definition
	DefaultPrivileges []string
}

type relation struct {
	Kind             string
	Owner            string
	RowSecurity      bool
	ForceRowSecurity bool
	Privileges       string
	Comment          string
	Definition       string   // view query, sequence parameters, storage options
	Columns          []string // in order: name, type, NOT NULL, default, privileges, comment
	Indexes          map[string]string
	Constraints      map[string]string
	Policies         map[string]string
	Triggers         map[string]string
}

// userObjects restricts a catalog query to the schemas migrations may write in.
const userObjects = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// notInExtension excludes the members of an extension (listed with the extension).
func notInExtension(classid, objid string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '%s'::regclass AND e.objid = %s AND e.deptype = 'e')`, classid, objid)
}

// privileges renders an ACL (the object type's default when NULL) as sorted
// "grantee=PRIVILEGE/grantor" items, so the same grants compare equal in any order.
func privileges(acl, objType, owner string) string {
	return fmt.Sprintf(`(SELECT coalesce(string_agg(x, ', ' ORDER BY x), '') FROM (
		SELECT format('%%s=%%s%%s/%%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
			a.privilege_type, CASE WHEN a.is_grantable THEN '*' ELSE '' END, pg_get_userbyid(a.grantor)) AS x
		FROM aclexplode(coalesce(%s, acldefault('%s', %s))) a) acl)`, acl, objType, owner)
}

// snapshot reads the schema of d from the catalog.
func snapshot(t *testing.T, d *testutil.DB) schema {
	t.Helper()
	s := schema{Schemas: map[string]string{}, Extensions: map[string]string{}, Types: map[string]string{},
		Relations: map[string]relation{}, Functions: map[string]string{}}
	for _, r := range catalog(t, d, `SELECT n.nspname, concat_ws(' ', 'OWNER', pg_get_userbyid(n.nspowner), 'GRANTS', `+privileges("n.nspacl", "n", "n.nspowner")+`)
		FROM pg_namespace n WHERE `+userObjects) {
		s.Schemas[r[0]] = r[1]
	}
	for _, r := range catalog(t, d, `SELECT x.extname, x.extversion || ' IN ' || n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace`) {
		s.Extensions[r[0]] = r[1]
	}
	for _, r := range catalog(t, d, `SELECT n.nspname || '.' || t.typname, concat_ws(' ', CASE t.typtype WHEN 'e' THEN 'ENUM' WHEN 'd' THEN 'DOMAIN' WHEN 'c' THEN 'COMPOSITE' WHEN 'r' THEN 'RANGE' ELSE t.typtype::text END,
			'OWNER ' || pg_get_userbyid(t.typowner),
			(SELECT '(' || string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) || ')' FROM pg_enum e WHERE e.enumtypid = t.oid),
			CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
			CASE WHEN t.typtype = 'd' AND t.typnotnull THEN 'NOT NULL' END,
			'DEFAULT ' || t.typdefault,
			(SELECT string_agg(c.conname || ' ' || pg_get_constraintdef(c.oid), ', ' ORDER BY c.conname) FROM pg_constraint c WHERE c.contypid = t.oid),
			(SELECT '(' || string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) || ')'
				FROM pg_attribute a WHERE a.attrelid = t.typrelid AND t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped),
			'GRANTS ' || `+privileges("t.typacl", "T", "t.typowner")+`)
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE `+userObjects+` AND t.typtype IN ('e', 'd', 'c', 'r') AND t.typelem = 0
		  AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
		  AND `+notInExtension("pg_type", "t.oid")) {
		s.Types[r[0]] = r[1]
	}

	rel := func(name string) relation {
		r, ok := s.Relations[name]
		if !ok {
			t.Fatalf("catalog: %s is not a relation of the snapshot", name)
		}
		return r
	}
	const relName = `n.nspname || '.' || c.relname`
	const relFrom = `pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace`
	for _, r := range catalog(t, d, `SELECT `+relName+`, c.relkind::text, pg_get_userbyid(c.relowner), c.relrowsecurity::text, c.relforcerowsecurity::text,
			`+privileges("c.relacl", "r", "c.relowner")+`, coalesce(obj_description(c.oid, 'pg_class'), ''),
			concat_ws(' ', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
				(SELECT format('AS %s START %s INCREMENT %s MINVALUE %s MAXVALUE %s CACHE %s%s', format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
					q.seqmin, q.seqmax, q.seqcache, CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END) FROM pg_sequence q WHERE q.seqrelid = c.oid),
				'WITH (' || array_to_string(c.reloptions, ', ') || ')')
		FROM `+relFrom+` WHERE `+userObjects+` AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND `+notInExtension("pg_class", "c.oid")) {
		s.Relations[r[0]] = relation{Kind: r[1], Owner: r[2], RowSecurity: r[3] == "true", ForceRowSecurity: r[4] == "true",
			Privileges: r[5], Comment: r[6], Definition: r[7],
			Indexes: map[string]string{}, Constraints: map[string]string{}, Policies: map[string]string{}, Triggers: map[string]string{}}
	}
	for _, r := range catalog(t, d, `SELECT `+relName+`, concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod),
			'COLLATE ' || CASE WHEN a.attcollation <> ty.typcollation THEN (SELECT co.collname FROM pg_collation co WHERE co.oid = a.attcollation) END,
			CASE WHEN a.attnotnull THEN 'NOT NULL' END,
			CASE WHEN a.attgenerated = 's' THEN 'GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
			     ELSE 'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) END,
			CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END,
			'GRANTS ' || NULLIF((SELECT string_agg(x, ', ' ORDER BY x) FROM (
				SELECT format('%s=%s/%s', CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(g.grantee) END, g.privilege_type, pg_get_userbyid(g.grantor)) AS x
				FROM unnest(a.attacl) item, aclexplode(ARRAY[item]) g) acl), ''),
			'COMMENT ' || quote_literal(col_description(c.oid, a.attnum)))
		FROM pg_attribute a JOIN `+relFrom+` ON c.oid = a.attrelid JOIN pg_type ty ON ty.oid = a.atttypid
		LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
		WHERE `+userObjects+` AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND `+notInExtension("pg_class", "c.oid")+`
		ORDER BY 1, a.attnum`) {
		x := rel(r[0])
		x.Columns = append(x.Columns, r[1])
		s.Relations[r[0]] = x
	}
	for _, r := range catalog(t, d, `SELECT `+relName+`, ic.relname, pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN `+relFrom+` ON c.oid = i.indrelid
		WHERE `+userObjects+` AND `+notInExtension("pg_class", "c.oid")) {
		rel(r[0]).Indexes[r[1]] = r[2]
	}
	for _, r := range catalog(t, d, `SELECT `+relName+`, co.conname, pg_get_constraintdef(co.oid)
		FROM pg_constraint co JOIN `+relFrom+` ON c.oid = co.conrelid
		WHERE `+userObjects+` AND `+notInExtension("pg_class", "c.oid")) {
		rel(r[0]).Constraints[r[1]] = r[2]
	}
	for _, r := range catalog(t, d, `SELECT p.schemaname || '.' || p.tablename, p.policyname, concat_ws(' ', p.permissive, 'FOR', p.cmd,
			'TO', (SELECT string_agg(x, ', ' ORDER BY x) FROM unnest(p.roles::text[]) x),
			'USING (' || p.qual || ')', 'WITH CHECK (' || p.with_check || ')')
		FROM pg_policies p`) {
		rel(r[0]).Policies[r[1]] = r[2]
	}
	for _, r := range catalog(t, d, `SELECT `+relName+`, tg.tgname, pg_get_triggerdef(tg.oid) || CASE tg.tgenabled WHEN 'O' THEN '' ELSE ' (enabled: ' || tg.tgenabled::text || ')' END
		FROM pg_trigger tg JOIN `+relFrom+` ON c.oid = tg.tgrelid
		WHERE `+userObjects+` AND NOT tg.tgisinternal`) {
		rel(r[0]).Triggers[r[1]] = r[2]
	}
	for _, r := range catalog(t, d, `SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
			concat_ws(E'\n', 'OWNER ' || pg_get_userbyid(p.proowner), 'GRANTS ' || `+privileges("p.proacl", "f", "p.proowner")+`,
				'COMMENT ' || quote_literal(obj_description(p.oid, 'pg_proc')),
				CASE WHEN p.prokind = 'a' THEN 'AGGREGATE' ELSE pg_get_functiondef(p.oid) END)
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE `+userObjects+` AND `+notInExtension("pg_proc", "p.oid")) {
		s.Functions[r[0]] = r[1]
	}
	for _, r := range catalog(t, d, `SELECT concat_ws(' ', 'FOR', pg_get_userbyid(da.defaclrole), 'IN', coalesce(n.nspname, '*'), 'ON', da.defaclobjtype::text), (
			SELECT string_agg(x, ', ' ORDER BY x) FROM (
				SELECT format('%s=%s/%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, pg_get_userbyid(a.grantor)) AS x
				FROM aclexplode(da.defaclacl) a) acl)
		FROM pg_default_acl da LEFT JOIN pg_namespace n ON n.oid = da.defaclnamespace ORDER BY 1`) {
		s.DefaultPrivileges = append(s.DefaultPrivileges, r[0]+": "+r[1])
	}
	return s
}

// catalog runs a query whose columns are all text and returns its rows.
func catalog(t *testing.T, d *testutil.DB, query string) [][]string {
	t.Helper()
	rows, err := d.Admin.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("catalog query: %v\n%s", err, query)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]string, error) {
		vals := make([]*string, len(r.FieldDescriptions()))
		dst := make([]any, len(vals))
		for i := range vals {
			dst[i] = &vals[i]
		}
		if err := r.Scan(dst...); err != nil {
			return nil, err
		}
		row := make([]string, len(vals))
		for i, v := range vals {
			if v != nil {
				row[i] = *v
			}
		}
		return row, nil
	})
	if err != nil {
		t.Fatalf("catalog query: %v\n%s", err, query)
	}
	return out
}

func TestRolesRefuseAppRole(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	err := migrate.EnsureRoles(context.Background(), d.AppURL)
	if err == nil || !strings.Contains(err.Error(), "gatehouse_app") {
		t.Fatalf("migrating as gatehouse_app: %v", err)
	}
}
