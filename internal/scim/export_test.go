package scim

import "context"

// ListUsersByScan lists as ListUsers does but evaluates the filter over every user of the
// tenant, never by index: what the index plans must give.
func (s *Service) ListUsersByScan(ctx context.Context, c Caller, lq ListQuery) (ListResponse, error) {
	return s.listUsers(ctx, c, lq, false)
}

// ByIndex tells whether ListUsers answers f from the indexes.
func ByIndex(f *Filter) bool {
	_, ok := planLookups(f)
	return ok
}

// EmailKeys is emailKeys, for the backfill check.
var EmailKeys = emailKeys
