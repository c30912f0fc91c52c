package webhooks_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
)

// BenchmarkDeliveryBody is the CPU part of one delivery attempt: the envelope of a
// user.created event as JSON and its signature, by one key and (during a rotation) by two.
// The rest of an attempt is two short transactions and the HTTP request (docs/performance.md).
func BenchmarkDeliveryBody(b *testing.B) {
	data, err := json.Marshal(events.User{UserID: uuid.New(), Email: "ann@example.com", Name: "Ann", Status: "active", Source: "signup"})
	if err != nil {
		b.Fatal(err)
	}
	p := webhooks.Payload{ID: uuid.New(), Type: events.UserCreated, Tenant: webhooks.PayloadTenant{ID: uuid.New(), Slug: "acme"},
		OccurredAt: time.Now().UTC(), Data: data}
	k1, k2 := make([]byte, 32), make([]byte, 32)
	for _, keys := range []struct {
		name string
		keys [][]byte
	}{{"one key", [][]byte{k1}}, {"two keys", [][]byte{k1, k2}}} {
		b.Run(keys.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				body, err := json.Marshal(p)
				if err != nil {
					b.Fatal(err)
				}
				_ = webhooks.Signature(p.ID.String(), p.OccurredAt, body, keys.keys...)
			}
		})
	}
}
