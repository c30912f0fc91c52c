package app

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// registerGauges exports what is read at scrape time: the database pool, the job queue
// (River's global table, by state), this process's session cache and its OpenID Provider's
// token and app cache.
func (a *App) registerGauges(m metric.Meter) error {
	pool, err := m.Int64ObservableGauge("gatehouse.db.pool.connections", metric.WithDescription("Database connections of this process by state"))
	if err != nil {
		return err
	}
	jobs, err := m.Int64ObservableGauge("gatehouse.jobs.queued", metric.WithDescription("Background jobs waiting or running, by state"))
	if err != nil {
		return err
	}
	lag, err := m.Float64ObservableGauge("gatehouse.jobs.oldest_wait", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest job that is due but not yet running"))
	if err != nil {
		return err
	}
	cached, err := m.Int64ObservableGauge("gatehouse.sessions.cached", metric.WithDescription("Validated sessions cached by this process"))
	if err != nil {
		return err
	}
	oidcCached, err := m.Int64ObservableGauge("gatehouse.oidc.cached", metric.WithDescription("Verified access tokens and apps cached by this process's OpenID Provider, by kind"))
	if err != nil {
		return err
	}
	active, err := m.Int64ObservableGauge("gatehouse.sessions.active",
		metric.WithDescription("Sessions not revoked and not past their absolute expiry, over all tenants (each tenant recounted by the housekeeping rotation: every 50 minutes at 10,000 tenants)"))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		st := a.store.Pool().Stat()
		o.ObserveInt64(pool, int64(st.AcquiredConns()), metric.WithAttributes(attribute.String("state", "acquired")))
		o.ObserveInt64(pool, int64(st.IdleConns()), metric.WithAttributes(attribute.String("state", "idle")))
		o.ObserveInt64(pool, int64(st.TotalConns()), metric.WithAttributes(attribute.String("state", "total")))
		o.ObserveInt64(cached, int64(a.Sessions.CachedSessions()))
		tokens, apps := a.OIDC.CachedTokens()
		o.ObserveInt64(oidcCached, int64(tokens), metric.WithAttributes(attribute.String("kind", "access_token")))
		o.ObserveInt64(oidcCached, int64(apps), metric.WithAttributes(attribute.String("kind", "app")))
		var n int64
		if a.activeSessions.Each(func(v int64) { n += v }) {
			o.ObserveInt64(active, n)
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		rows, err := a.store.Pool().Query(ctx, `SELECT s.state, count(j.id),
			COALESCE(EXTRACT(EPOCH FROM now() - min(j.scheduled_at) FILTER (WHERE j.state = 'available' AND j.scheduled_at <= now())), 0)::float8
			FROM unnest(ARRAY['available', 'scheduled', 'retryable', 'running']) AS s(state)
			LEFT JOIN river_job j ON j.state::text = s.state GROUP BY s.state`)
		if err != nil {
			return fmt.Errorf("job gauges: %w", err)
		}
		defer rows.Close()
		oldest := 0.0
		for rows.Next() {
			var state string
			var n int64
			var wait float64
			if err := rows.Scan(&state, &n, &wait); err != nil {
				return err
			}
			o.ObserveInt64(jobs, n, metric.WithAttributes(attribute.String("state", state)))
			oldest = max(oldest, wait)
		}
		o.ObserveFloat64(lag, oldest)
		return rows.Err()
	}, pool, jobs, lag, cached, oidcCached, active)
	return err
}
