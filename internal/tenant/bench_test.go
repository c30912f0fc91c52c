package tenant_test

import (
	"context"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// BenchmarkResolverLookup measures host -> tenant resolution, which runs on every request:
// from the cache (listener connected) and from PostgreSQL (cache bypassed).
func BenchmarkResolverLookup(b *testing.B) {
	d := testutil.PackageDB(b)
	ten := testutil.NewTenant(b, d, "bench")
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		listen bool
	}{{"cached", true}, {"database", false}} {
		b.Run(bc.name, func(b *testing.B) {
			n := newNode(b, d, bc.listen)
			if _, err := n.resolver.Lookup(ctx, ten.Slug); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := n.resolver.Lookup(ctx, ten.Slug); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
