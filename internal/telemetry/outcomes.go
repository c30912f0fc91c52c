package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

// Outcomes counts a domain event by result: "ok", or the stable error code (never
// anything user-supplied, so the label set stays small). A nil *Outcomes counts nothing.
type Outcomes struct{ c metric.Int64Counter }

// NewOutcomes creates the counter name on m (nil m: a nil *Outcomes).
func NewOutcomes(m metric.Meter, name, desc string) *Outcomes {
	if m == nil {
		return nil
	}
	c, err := m.Int64Counter(name, metric.WithDescription(desc))
	if err != nil {
		return nil
	}
	return &Outcomes{c: c}
}

// Result is "ok" for a nil error, else the error's stable code ("internal" for others).
func Result(err error) string {
	if err == nil {
		return "ok"
	}
	return apperr.From(err).Code
}

// Add counts one event with result and extra attributes.
func (o *Outcomes) Add(ctx context.Context, result string, attrs ...attribute.KeyValue) {
	if o == nil {
		return
	}
	o.c.Add(ctx, 1, metric.WithAttributes(append(attrs, attribute.String("result", result))...))
}
