package scim

// Discovery documents (RFC 7644 §4, RFC 7643 §5-7).

// ServiceProviderConfig describes what this server supports.
func (s *Service) ServiceProviderConfig(c Caller) Resource {
	return Resource{
		"schemas":          []any{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/gatehouse-id/gatehouse/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{"type": "oauthbearertoken", "name": "Bearer token",
			"description": "A directory token created in the portal (Directory sync) or the admin API.", "primary": true}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.urls.Link(c.Tenant.Slug, BasePath+"/ServiceProviderConfig", nil)},
	}
}

// ResourceTypes lists User and Group.
func (s *Service) ResourceTypes(c Caller) []Resource {
	return []Resource{s.resourceType(c, "User"), s.resourceType(c, "Group")}
}

func (s *Service) resourceType(c Caller, name string) Resource {
	r := Resource{"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": name, "name": name,
		"endpoint": "/" + name + "s",
		"meta":     map[string]any{"resourceType": "ResourceType", "location": s.urls.Link(c.Tenant.Slug, BasePath+"/ResourceTypes/"+name, nil)}}
	if name == "User" {
		r["description"], r["schema"] = "User Account", UserSchema
		r["schemaExtensions"] = []any{map[string]any{"schema": EnterpriseSchema, "required": false}}
	} else {
		r["description"], r["schema"] = "Group", GroupSchema
	}
	return r
}

func attr(name, typ string, multi, required bool, mutability, uniqueness string, subs ...Resource) Resource {
	a := Resource{"name": name, "type": typ, "multiValued": multi, "required": required, "caseExact": caseExact[name],
		"mutability": mutability, "returned": "default", "uniqueness": uniqueness}
	if len(subs) > 0 {
		ss := make([]any, len(subs))
		for i, s := range subs {
			ss[i] = s
		}
		a["subAttributes"] = ss
	}
	return a
}

func str0(name string) Resource { return attr(name, "string", false, false, "readWrite", "none") }

// Schemas returns the User, enterprise User and Group schemas.
func (s *Service) Schemas(c Caller) []Resource {
	multi := func(name string) Resource {
		return attr(name, "complex", true, false, "readWrite", "none", str0("value"), str0("display"), str0("type"),
			attr("primary", "boolean", false, false, "readWrite", "none"))
	}
	user := Resource{"id": UserSchema, "name": "User", "description": "User Account", "attributes": []any{
		attr("userName", "string", false, true, "readWrite", "server"),
		attr("name", "complex", false, false, "readWrite", "none", str0("formatted"), str0("familyName"), str0("givenName"),
			str0("middleName"), str0("honorificPrefix"), str0("honorificSuffix")),
		str0("displayName"), str0("nickName"), str0("title"), str0("userType"), str0("preferredLanguage"), str0("locale"), str0("timezone"),
		attr("active", "boolean", false, false, "readWrite", "none"),
		multi("emails"), multi("phoneNumbers"),
		attr("addresses", "complex", true, false, "readWrite", "none", str0("formatted"), str0("streetAddress"), str0("locality"),
			str0("region"), str0("postalCode"), str0("country"), str0("type")),
		attr("groups", "complex", true, false, "readOnly", "none", str0("value"), str0("$ref"), str0("display")),
		attr("externalId", "string", false, false, "readWrite", "none"),
	}}
	enterprise := Resource{"id": EnterpriseSchema, "name": "EnterpriseUser", "description": "Enterprise User", "attributes": []any{
		str0("employeeNumber"), str0("costCenter"), str0("organization"), str0("division"), str0("department"),
		attr("manager", "complex", false, false, "readWrite", "none", str0("value"), str0("$ref"), str0("displayName")),
	}}
	group := Resource{"id": GroupSchema, "name": "Group", "description": "Group", "attributes": []any{
		attr("displayName", "string", false, true, "readWrite", "server"),
		attr("members", "complex", true, false, "readWrite", "none", str0("value"), str0("$ref"), str0("display"), str0("type")),
		attr("externalId", "string", false, false, "readWrite", "none"),
	}}
	out := []Resource{user, enterprise, group}
	for _, r := range out {
		r["schemas"] = []any{"urn:ietf:params:scim:schemas:core:2.0:Schema"}
		r["meta"] = map[string]any{"resourceType": "Schema", "location": s.urls.Link(c.Tenant.Slug, BasePath+"/Schemas/"+r["id"].(string), nil)}
	}
	return out
}
