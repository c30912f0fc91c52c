// Package db embeds the SQL migrations so the gatehouse binary carries its own schema.
package db

import "embed"

// Migrations holds db/migrations/*.sql in golang-migrate's file naming
// ({version}_{title}.up.sql / .down.sql).
//
//go:embed migrations/*.sql
var Migrations embed.FS
