package sso_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// TestNewServiceRefusesMissingDependencies: without a mailer certificate notices were
// dropped and without a limiter SSO starts were unlimited, silently; now start-up stops
// (issue 15, step 4).
func TestNewServiceRefusesMissingDependencies(t *testing.T) {
	_, err := sso.NewService(nil, nil, tenant.URLs{BaseDomain: "localhost"}, nil, sso.Config{}, time.Now, true, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("an SSO service without its store, mailer and limiter was built")
	}
}
