package account_test

import (
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// TestNewServiceRefusesMissingDependencies: an account service without its SSO gate (or
// any other dependency) is refused at start; a forgotten gate used to turn SSO
// enforcement off without a word (issue 15, step 4).
func TestNewServiceRefusesMissingDependencies(t *testing.T) {
	if _, err := account.NewService(account.Deps{URLs: tenant.URLs{BaseDomain: "localhost"}}, account.Config{}); err == nil {
		t.Fatal("an account service without dependencies was built")
	}
	if _, err := account.NewPurgeWorker(nil, nil); err == nil {
		t.Fatal("a purge worker without services was built")
	}
}
