package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// UniqueSlug returns a fresh tenant slug starting with prefix.
func UniqueSlug(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// NewTenant creates an active tenant with a unique slug in d and returns it.
func NewTenant(tb testing.TB, d *DB, prefix string) tenant.Tenant {
	tb.Helper()
	svc := tenant.NewService(d.Store, time.Now)
	c, err := svc.Create(context.Background(), tenant.CreateInput{Slug: UniqueSlug(prefix), Name: "Test " + prefix})
	if err != nil {
		tb.Fatalf("create tenant: %v", err)
	}
	return c.Tenant
}
