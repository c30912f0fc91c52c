package sso

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// CertificateNotices mails the owners of every tenant whose IdP signing certificate
// expires within 30 days, once at 30 and once at 7 days (a new certificate resets it).
// The mail is enqueued in the transaction that records the notice, so it is sent once.
func (s *Service) CertificateNotices(ctx context.Context, tenants []tenant.Tenant) error {
	var errs error
	for _, t := range tenants {
		err := s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
			due, err := q.ListCertificatesDue(ctx)
			if err != nil || len(due) == 0 {
				return err
			}
			owners, err := q.ListOwners(ctx)
			if err != nil {
				return err
			}
			for _, c := range due {
				when := c.IdPCertNotAfter.UTC().Format("2 January 2006")
				event := fmt.Sprintf("The signing certificate of single sign-on connection %q expires on %s", c.Name, when)
				if c.IdPCertNotAfter.Before(s.now()) {
					event = fmt.Sprintf("The signing certificate of single sign-on connection %q expired on %s", c.Name, when)
				}
				for _, o := range owners {
					uid := o.ID
					err := s.cfg.Mail.Enqueue(ctx, tx, q, mail.Mail{TenantID: t.ID, UserID: &uid, To: o.Email, Template: mail.TplSSOCertificate,
						Data: mail.Data{Tenant: t.DisplayName(), Email: o.Email, Event: event,
							Detail: "the identity provider must sign with its new certificate, and Gatehouse must know it before then.",
							Link:   s.urls.Link(t.Slug, "/admin/sso/"+c.ID.String(), nil)}})
					if err != nil {
						return err
					}
				}
				if err := q.MarkCertificateNotice(ctx, sqlcgen.MarkCertificateNoticeParams{ID: c.ID, Days: &c.Threshold}); err != nil {
					return err
				}
			}
			return nil
		})
		errs = errors.Join(errs, err)
	}
	return errs
}

// certificateCounts is one tenant's count of enabled connections by certificate expiry.
type certificateCounts struct{ expired, within7d, within30d int64 }

// CountCertificateExpiries counts, for each tenant of batch, the enabled connections whose
// IdP signing certificate has expired or expires within 7 or 30 days, and forgets tenants
// not in all (deleted). The gatehouse.sso.certificates gauge sums the last count of every
// tenant (the alert rule GatehouseSSOCertificateExpiring reads it); housekeeping counts a
// rotating batch of tenants each minute, so after a start the sum covers every tenant once
// the rotation has gone round.
func (s *Service) CountCertificateExpiries(ctx context.Context, batch, all []tenant.Tenant) error {
	counted := make(map[uuid.UUID]certificateCounts, len(batch))
	var errs error
	for _, t := range batch {
		var c sqlcgen.CountCertificateExpiriesRow
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			var err error
			c, err = q.CountCertificateExpiries(ctx)
			return err
		}, store.ReadOnly(), store.Idempotent())
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("count certificate expiries of %s: %w", t.Slug, err))
			continue
		}
		counted[t.ID] = certificateCounts{int64(c.Expired), int64(c.Within7d), int64(c.Within30d)}
	}
	ids := make([]uuid.UUID, len(all))
	for i, t := range all {
		ids[i] = t.ID
	}
	s.certs.Update(counted, ids)
	return errs
}

// observeCertificates reports the sums (nothing before the first count).
func (s *Service) observeCertificates(_ context.Context, o metric.Int64Observer) error {
	var sum certificateCounts
	if !s.certs.Each(func(c certificateCounts) {
		sum.expired += c.expired
		sum.within7d += c.within7d
		sum.within30d += c.within30d
	}) {
		return nil
	}
	o.Observe(sum.expired, metric.WithAttributes(attribute.String("expiry", "expired")))
	o.Observe(sum.within7d, metric.WithAttributes(attribute.String("expiry", "within_7d")))
	o.Observe(sum.within30d, metric.WithAttributes(attribute.String("expiry", "within_30d")))
	return nil
}
