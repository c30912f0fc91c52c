package account

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// LoginResult is a successful login.
type LoginResult struct {
	Session session.Issued
	User    User
}

// Login checks email and password and starts a session. Unknown addresses are checked
// against a dummy hash, so the answer and its timing are the same as for a wrong
// password. Failed attempts slow down that account from that client address (progressive
// delay, never a hard lockout).
// Errors: invalid_email, invalid_credentials, rate_limited, email_not_verified,
// account_disabled, account_pending_deletion.
func (s *Service) Login(ctx context.Context, t tenant.Tenant, email, pw string, meta Meta) (LoginResult, error) {
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return LoginResult{}, err
	}
	if err := s.limitIP(ctx, t, loginPerIP, meta); err != nil {
		return LoginResult{}, err
	}
	failKey := ratelimit.Key("login", email, meta.IP.String())
	if wait, err := s.limiter.LoginDelay(ctx, t.ID, failKey); err != nil {
		return LoginResult{}, err
	} else if wait > 0 {
		return LoginResult{}, ratelimit.Limited(wait)
	}

	var row sqlcgen.GetUserWithPasswordRow
	found := false
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := q.GetUserWithPassword(ctx, email)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		row, found = r, true
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return LoginResult{}, err
	}
	stored := ""
	if found && row.PasswordHash != nil {
		stored = *row.PasswordHash
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, stored)
	if err != nil {
		return LoginResult{}, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		if err := s.limiter.RecordLoginFailure(ctx, t.ID, failKey); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, ErrInvalidCredentials
	}
	switch row.Status {
	case "disabled":
		return LoginResult{}, ErrAccountDisabled
	case "pending_deletion":
		return LoginResult{}, ErrPendingDeletion
	}
	if row.EmailVerifiedAt == nil {
		v := t.Policy.Verification
		switch {
		case v.Mode == tenant.VerificationRequired,
			v.Mode == tenant.VerificationGrace && s.now().After(row.CreatedAt.Add(time.Duration(v.GraceHours)*time.Hour)):
			return LoginResult{}, errEmailNotVerified()
		}
	}
	var newHash string
	if rehash {
		if newHash, err = s.hasher.Hash(ctx, pw); err != nil {
			return LoginResult{}, err
		}
	}
	var res LoginResult
	var evicted [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if newHash != "" {
			if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: row.ID, Hash: newHash}); err != nil {
				return err
			}
		}
		if err := ratelimit.ClearLoginFailures(ctx, q, failKey); err != nil {
			return err
		}
		if err := q.TouchLastLogin(ctx, row.ID); err != nil {
			return err
		}
		iss, ev, err := session.Create(ctx, q, row.ID, t.Policy.Sessions, meta, []string{"password"})
		if err != nil {
			return err
		}
		evicted = ev
		u, err := q.GetUserByID(ctx, row.ID)
		if err != nil {
			return err
		}
		res = LoginResult{Session: iss, User: userFromRow(u)}
		if iss.NewDevice && t.Policy.Sessions.NewDeviceNotice {
			return s.noticeNewDevice(ctx, tx, q, t, u, iss.Session)
		}
		return nil
	})
	s.sessions.Invalidate(evicted)
	return res, err
}

// noticeNewDevice mails the user about a sign-in from a device they have not used, with a
// "wasn't you?" link, in the login transaction.
func (s *Service) noticeNewDevice(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, u sqlcgen.User, sess session.Session) error {
	tok, err := issueToken(ctx, q, u.ID, "secure_account", u.Email, s.now().Add(SecureTokenTTL))
	if err != nil {
		return err
	}
	ip := "unknown"
	if sess.IP.IsValid() {
		ip = sess.IP.String()
	}
	return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplNewDevice, mail.Data{Email: u.Email, Device: DeviceLabel(sess),
		IP: ip, When: sess.CreatedAt.UTC().Format("Monday 2 January 2006, 15:04 UTC"), Link: s.link(t, "/account/secure", tok)})
}

// DeviceLabel describes a session's device for people: "Chrome on macOS".
func DeviceLabel(s session.Session) string {
	b, o := s.Browser, s.OS
	switch {
	case b != "" && o != "":
		return b + " on " + o
	case b != "":
		return b
	case o != "":
		return "a browser on " + o
	case s.Device != "":
		return "an unknown " + strings.ToLower(s.Device) + " client"
	}
	return "an unknown device"
}
