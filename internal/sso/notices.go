package sso

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// CertificateNotices mails the owners of every tenant whose IdP signing certificate
// expires within 30 days, once at 30 and once at 7 days (a new certificate resets it).
// The mail is enqueued in the transaction that records the notice, so it is sent once.
func (s *Service) CertificateNotices(ctx context.Context, tenants []tenant.Tenant) error {
	if s.cfg.Mail == nil {
		return nil
	}
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
				when := c.IdpCertNotAfter.UTC().Format("2 January 2006")
				event := fmt.Sprintf("The signing certificate of single sign-on connection %q expires on %s", c.Name, when)
				if c.IdpCertNotAfter.Before(s.now()) {
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
