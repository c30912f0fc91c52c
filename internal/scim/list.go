package scim

import (
	"net/url"
	"strconv"
	"strings"
)

// MaxCount is the largest page (ServiceProviderConfig filter.maxResults).
const MaxCount = 1000

// ListQuery is a list request's filter, page and attribute selection.
type ListQuery struct {
	Filter     *Filter
	StartIndex int // 1-based
	Count      int
	Attributes []string
	Excluded   []string
}

// ListResponse is a ListResponse message (RFC 7644 §3.4.2).
type ListResponse struct {
	Schemas      []string   `json:"schemas"`
	TotalResults int        `json:"totalResults"`
	StartIndex   int        `json:"startIndex"`
	ItemsPerPage int        `json:"itemsPerPage"`
	Resources    []Resource `json:"Resources"`
}

// ParseListQuery reads filter, startIndex, count, attributes and excludedAttributes.
// Errors: invalidFilter, invalidValue.
func ParseListQuery(v url.Values) (ListQuery, error) {
	lq := ListQuery{StartIndex: 1, Count: 100}
	f, err := ParseFilter(v.Get("filter"))
	if err != nil {
		return lq, err
	}
	lq.Filter = f
	if s := v.Get("startIndex"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return lq, invalidValue("startIndex is a number.")
		}
		if n > 1 {
			lq.StartIndex = n
		}
	}
	if s := v.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return lq, invalidValue("count is a number.")
		}
		lq.Count = max(0, min(n, MaxCount))
	}
	lq.Attributes = splitAttrs(v.Get("attributes"))
	lq.Excluded = splitAttrs(v.Get("excludedAttributes"))
	return lq, nil
}

func splitAttrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// page cuts one page out of the matching resources and projects each.
func page(all []Resource, lq ListQuery) ListResponse {
	out := ListResponse{Schemas: []string{ListSchema}, TotalResults: len(all), StartIndex: lq.StartIndex, Resources: []Resource{}}
	from := lq.StartIndex - 1
	if from < len(all) && lq.Count > 0 {
		to := min(len(all), from+lq.Count)
		for _, r := range all[from:to] {
			out.Resources = append(out.Resources, Project(r, lq.Attributes, lq.Excluded))
		}
	}
	out.ItemsPerPage = len(out.Resources)
	return out
}

// Project keeps the requested attributes (id, schemas and meta always) or drops the
// excluded ones (RFC 7644 §3.9). Names are top-level attributes, sub-attributes
// ("name.givenName") or extension attributes with their URN.
func Project(r Resource, attrs, excluded []string) Resource {
	if len(attrs) == 0 && len(excluded) == 0 {
		return r
	}
	if len(attrs) > 0 {
		out := Resource{"id": r["id"], "schemas": r["schemas"], "meta": r["meta"]}
		for _, a := range attrs {
			container, name, subName := splitAttrPath(a)
			src := r
			if container != "" {
				src = sub(r, container)
				if src == nil {
					continue
				}
			}
			k, v, ok := lookup(src, name)
			if !ok {
				continue
			}
			if subName != "" {
				if m, isMap := v.(map[string]any); isMap {
					_, sv, ok := lookup(m, subName)
					if !ok {
						continue
					}
					v = map[string]any{canon(subName): sv}
				}
			}
			dst := out
			if container != "" {
				ext, _ := out[container].(map[string]any)
				if ext == nil {
					ext = map[string]any{}
					out[container] = ext
				}
				dst = ext
			}
			if existing, ok := dst[k].(map[string]any); ok {
				if vm, ok := v.(map[string]any); ok {
					for sk, sv := range vm {
						existing[sk] = sv
					}
					continue
				}
			}
			dst[k] = v
		}
		return out
	}
	out := Resource{}
	for k, v := range r {
		out[k] = v
	}
	for _, a := range excluded {
		container, name, _ := splitAttrPath(a)
		if container != "" {
			if ext := sub(out, container); ext != nil {
				ext = deepCopy(ext).(map[string]any)
				del(ext, name)
				out[container] = ext
			}
			continue
		}
		if name != "id" && name != "schemas" {
			del(out, name)
		}
	}
	return out
}

// splitAttrPath splits "urn:…:User:manager.value" into the extension, name and sub-attribute.
func splitAttrPath(a string) (container, name, subName string) {
	for _, urn := range []string{EnterpriseSchema, UserSchema, GroupSchema} {
		if len(a) > len(urn) && strings.EqualFold(a[:len(urn)], urn) && a[len(urn)] == ':' {
			if urn == EnterpriseSchema {
				container = EnterpriseSchema
			}
			a = a[len(urn)+1:]
			break
		}
	}
	if strings.EqualFold(a, EnterpriseSchema) {
		return "", EnterpriseSchema, ""
	}
	name, subName, _ = strings.Cut(a, ".")
	return container, name, subName
}
