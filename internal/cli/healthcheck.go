package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runHealthcheck asks a Gatehouse (by default this container's own) for /readyz: the
// distroless image has no shell or curl for a container HEALTHCHECK.
func runHealthcheck(ctx context.Context, args []string, env Env) error {
	fs := newFlags("healthcheck", env)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	url := "http://127.0.0.1:8080/readyz"
	if len(pos) > 1 {
		return fmt.Errorf("%w: gatehouse healthcheck [URL]", errUsage)
	}
	if len(pos) == 1 {
		url = pos[0]
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	return nil
}
