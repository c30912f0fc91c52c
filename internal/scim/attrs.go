package scim

import (
	"strings"
)

// Schema URNs (RFC 7643).
const (
	UserSchema       = "urn:ietf:params:scim:schemas:core:2.0:User"
	GroupSchema      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	EnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	ListSchema       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	PatchSchema      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// Resource is a SCIM resource as JSON decodes it. Attribute names are matched without
// regard to case (RFC 7643 §2.1); canonical spellings are kept when Gatehouse writes them.
type Resource = map[string]any

// canonical spellings of the attributes Gatehouse knows, by lower-case name.
var canonical = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"id", "externalId", "meta", "schemas", "userName", "name", "displayName", "nickName", "profileUrl", "title",
		"userType", "preferredLanguage", "locale", "timezone", "active", "password", "emails", "phoneNumbers", "ims",
		"photos", "addresses", "groups", "entitlements", "roles", "x509Certificates", "members",
		"formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix",
		"value", "display", "type", "primary", "$ref", "streetAddress", "locality", "region", "postalCode", "country",
		"employeeNumber", "costCenter", "organization", "division", "department", "manager",
		"resourceType", "created", "lastModified", "location", "version",
	} {
		m[strings.ToLower(n)] = n
	}
	m[strings.ToLower(EnterpriseSchema)] = EnterpriseSchema
	return m
}()

// canon returns the canonical spelling of an attribute name (the name itself if unknown).
func canon(name string) string {
	if c, ok := canonical[strings.ToLower(name)]; ok {
		return c
	}
	return name
}

// multiValued are the attributes whose value is a list.
var multiValued = map[string]bool{"emails": true, "phoneNumbers": true, "ims": true, "photos": true, "addresses": true,
	"groups": true, "entitlements": true, "roles": true, "x509Certificates": true, "members": true, "schemas": true}

// caseExact are the attributes compared exactly (RFC 7643: id, externalId, meta.version, $ref).
var caseExact = map[string]bool{"id": true, "externalId": true, "version": true, "$ref": true, "value": false}

// lookup finds an attribute of m without regard to case.
func lookup(m map[string]any, name string) (string, any, bool) {
	if v, ok := m[name]; ok {
		return name, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

// set writes an attribute, replacing any spelling of it.
func set(m map[string]any, name string, v any) {
	if k, _, ok := lookup(m, name); ok {
		delete(m, k)
	}
	m[canon(name)] = v
}

// del removes an attribute in any spelling.
func del(m map[string]any, name string) bool {
	k, _, ok := lookup(m, name)
	if ok {
		delete(m, k)
	}
	return ok
}

// canonicalize rewrites the keys of a decoded resource into their canonical spelling,
// recursively, and lifts "True"/"False" strings of boolean attributes (Entra ID sends
// them) into booleans.
func canonicalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			c := canon(k)
			val = canonicalize(val)
			if c == "active" || c == "primary" {
				val = boolish(val)
			}
			out[c] = val
		}
		return out
	case []any:
		for i := range x {
			x[i] = canonicalize(x[i])
		}
		return x
	}
	return v
}

// boolish turns "True"/"False" (any case) into a boolean; other values stay.
func boolish(v any) any {
	if s, ok := v.(string); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return v
}

// str reads a string attribute ("" when absent or not a string).
func str(m map[string]any, name string) string {
	_, v, _ := lookup(m, name)
	s, _ := v.(string)
	return s
}

// sub returns a complex attribute as a map (nil when absent or not one).
func sub(m map[string]any, name string) map[string]any {
	_, v, _ := lookup(m, name)
	s, _ := v.(map[string]any)
	return s
}

// list returns a multi-valued attribute (nil when absent).
func list(m map[string]any, name string) []any {
	_, v, _ := lookup(m, name)
	switch x := v.(type) {
	case []any:
		return x
	case map[string]any:
		return []any{x}
	}
	return nil
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = deepCopy(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = deepCopy(val)
		}
		return out
	}
	return v
}
